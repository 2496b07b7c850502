public import DiskIO
public import Logging
public import QuiverModel
import QuiverJSON

/// The node's catalogue: which collections and aliases exist, and their configuration on disk.
///
/// On-disk layout under `storagePath`:
///
/// | path | content |
/// |---|---|
/// | `collections/<name>/config.json` | `CollectionConfig` as JSON |
/// | `aliases/data.json` | `{"alias": "collection", …}` |
/// | `tmp/` | collections being created or deleted; emptied at start-up |
///
/// A collection comes into existence by one rename of a fully written and fsynced directory from
/// `tmp/` into `collections/`, and leaves by the reverse rename, so a crash never leaves half a
/// collection visible. Every metadata file is replaced atomically (`Disk.writeFileAtomically`).
public actor TableOfContent {
    public nonisolated let storagePath: String
    /// Where snapshot archives are kept: `<snapshotsPath>/<collection>/<name>.snapshot`.
    public nonisolated let snapshotsPath: String
    public nonisolated let disk: any Disk
    let defaults: CollectionDefaults
    let maxCollections: Int?
    let logger: Logger
    var collections: [String: Collection] = [:]
    /// Collections recovered from a snapshot whose catalogue change is still on its way:
    /// reconciling leaves them as the snapshot made them.
    var recovering: Set<String> = []
    /// Collections being deleted (their shards closing): a recovery of the name waits for the end.
    var deleting: Set<String> = []
    /// Per collection, the snapshots being written and recovered and those written since the start.
    public internal(set) var snapshotActivity: [String: SnapshotActivity] = [:]
    /// Local shards being replaced from a snapshot (the catalogue keeps applying to their collection).
    var recoveringShards: Set<ShardRef> = []
    struct ShardRef: Hashable {
        var collection: String
        var shard: UInt32
    }
    /// alias → collection name
    var aliases: [String: String] = [:]
    private var tempCounter: UInt64 = 0
    /// This peer's id: the cluster's (set by ``enableCluster(peerID:network:)``), or on a single
    /// node the one given at creation (random by default), which names the peer in `GET …/cluster`.
    public private(set) var peerID: UInt64
    /// How collections reach shards on other peers; nil on a single node.
    var network: (any ShardNetwork)?
    /// Where collections report replicas that failed a write.
    let failures = ReplicaFailureRelay()
    /// Writes on their way to replicas, and the catalogue index this peer's storage has applied.
    public let routedWrites = RoutedWrites()

    var collectionsPath: String { joinPath(storagePath, "collections") }
    var aliasesPath: String { joinPath(storagePath, "aliases", "data.json") }
    var tempPath: String { joinPath(storagePath, "tmp") }
    /// Where snapshots are staged, downloaded and uploaded: `storage.temp_path`, else `tempPath`.
    let scratchPath: String?
    /// The storage's free-space guard (nil: not guarded).
    public nonisolated let space: SpaceGuard?
    /// The node's quotas (nil: none enforced).
    public nonisolated let quota: NodeQuota?

    public init(storagePath: String, disk: any Disk, defaults: CollectionDefaults = CollectionDefaults(),
                maxCollections: Int? = nil, peerID: UInt64? = nil, snapshotsPath: String? = nil, scratchPath: String? = nil,
                space: SpaceGuard? = nil, quota: NodeQuota? = nil, logger: Logger) {
        self.space = space
        self.quota = quota
        self.scratchPath = scratchPath
        self.peerID = peerID ?? UInt64.random(in: 1...(UInt64(1) << 62))
        self.storagePath = storagePath
        self.snapshotsPath = snapshotsPath ?? joinPath(storagePath, "snapshots")
        self.disk = disk
        self.defaults = defaults
        self.maxCollections = maxCollections
        self.logger = logger
    }

    // MARK: Start-up

    /// Makes this node a cluster peer; called before ``load()``, so collections open only the
    /// shards placed on this peer.
    public func enableCluster(peerID: UInt64, network: any ShardNetwork) {
        self.peerID = peerID
        self.network = network
    }

    /// Sends collections' reports of failed replicas to `reporter` (consensus) from now on.
    public func reportReplicaFailures(to reporter: any ReplicaFailureReporter) {
        failures.bind(reporter)
    }

    /// Creates the directory layout if needed, clears `tmp/`, and loads every collection and alias.
    public func load() throws(StorageError) {
        do {
            try disk.createDirectories(collectionsPath)
            try disk.createDirectories(parentDirectory(of: aliasesPath))
            try disk.removeItem(tempPath)
            try disk.createDirectories(tempPath)
            if let scratchPath {
                try disk.createDirectories(scratchPath)
                for name in try disk.listDirectory(scratchPath) where name.hasPrefix(Self.scratchPrefix) {
                    try disk.removeItem(joinPath(scratchPath, name))
                }
            }
        } catch {
            throw .serviceError("cannot prepare storage directory \(storagePath): \(error)")
        }
        // What a write cut short by a crash or a full disk left: a file written to be renamed
        // over another, an archive never finished. Neither is read; both take space.
        let leftovers = removeLeftovers(collectionsPath, suffix: ".tmp") + removeLeftovers(parentDirectory(of: aliasesPath), suffix: ".tmp")
            + removeLeftovers(snapshotsPath, suffix: Self.snapshotSuffix + ".partial")
        if leftovers > 0 { logger.info("Removed files left by unfinished writes", metadata: ["files": "\(leftovers)"]) }
        collections = [:]
        for name in try listDirectory(collectionsPath) {
            let dir = joinPath(collectionsPath, name)
            guard disk.isDirectory(dir) else { continue }
            let configPath = joinPath(dir, "config.json")
            guard disk.fileExists(configPath) else {
                logger.warning("Collection config is not found in the collection directory, skipping", metadata: ["path": "\(dir)"])
                continue
            }
            let config: CollectionConfig = try readJSON(configPath)
            collections[name] = try Collection.open(name: name, path: dir, config: config, layout: nil, peerID: peerID,
                                                    network: network, failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota)
        }
        aliases = disk.fileExists(aliasesPath) ? try readJSON(aliasesPath) : [:]
        let dangling = aliases.filter { collections[$0.value] == nil }
        if !dangling.isEmpty {
            for alias in dangling.keys { aliases[alias] = nil }
            try saveAliases(aliases)
            logger.warning("Removed aliases of collections that no longer exist", metadata: ["aliases": "\(dangling.keys.sorted())"])
        }
        logger.debug("Loaded storage", metadata: ["collections": "\(collections.count)", "aliases": "\(aliases.count)"])
    }

    /// Removes the files under `path` whose names end with `suffix`; returns how many.
    private func removeLeftovers(_ path: String, suffix: String) -> Int {
        disk.files(under: path).filter { $0.hasSuffix(suffix) && (try? disk.removeItem($0)) != nil }.count
    }

    // MARK: Reading

    public var collectionNames: [String] { collections.keys.sorted() }

    public var collectionCount: Int { collections.count }

    /// The collection addressed by `name`, which may be an alias.
    /// Whether this peer has created its replica of shard `shard` of collection `name`.
    public func holds(_ name: String, shard: UInt32) async -> Bool {
        guard let collection = collections[name] else { return false }
        return await collection.shards[shard] != nil
    }

    public func collection(_ name: String) throws(StorageError) -> Collection {
        if let collection = collections[name] { return collection }
        if let target = aliases[name], let collection = collections[target] { return collection }
        throw .collectionNotFound(name)
    }

    public func collectionExists(_ name: String) -> Bool {
        collections[name] != nil || aliases[name].map { collections[$0] != nil } == true
    }

    public func collectionInfo(_ name: String) async throws(StorageError) -> CollectionInfo {
        await (try collection(name)).info()
    }

    /// Every alias, sorted by alias name.
    public func listAliases() -> [AliasDescription] {
        aliases.keys.sorted().map { AliasDescription(aliasName: $0, collectionName: aliases[$0]!) }
    }

    /// Aliases of one collection (addressed by name or alias).
    public func aliases(of name: String) throws(StorageError) -> [AliasDescription] {
        let target = try collection(name).name
        return listAliases().filter { $0.collectionName == target }
    }

    // MARK: Collections

    /// The configuration a create request resolves to with this node's defaults, in a cluster of
    /// `peers` peers (the default shard number is `peers × shard_number_per_node`).
    public nonisolated func effectiveConfig(_ request: CreateCollection, peers: Int) -> CollectionConfig {
        request.effectiveConfig(defaults: defaults, peers: peers)
    }

    /// Refuses a new collection beyond `storage.max_collections`.
    public func checkCollectionLimit(_ name: String) throws(StorageError) {
        if let maxCollections, collections.count >= maxCollections {
            throw .badRequest("Can't create collection with name \(name). Max collections limit (\(maxCollections)) reached")
        }
    }

    private func createCollection(_ name: String, config: CollectionConfig, layout: [ShardInfo], routing: ShardRouting,
                                  indexes: [String: JSONValue]) async throws(StorageError) {
        let staging = nextTempPath("create")
        let finalPath = joinPath(collectionsPath, name)
        do {
            try disk.createDirectory(staging)
            try disk.writeFile(joinPath(staging, "config.json"), try encodeJSON(config))
            try disk.syncDirectory(staging)
            try disk.rename(staging, finalPath)
            try disk.syncDirectory(collectionsPath)
        } catch {
            try? disk.removeItem(staging)
            throw .writeFailed("cannot create collection `\(name)`", error)
        }
        let collection: Collection
        do {
            collection = try Collection.open(name: name, path: finalPath, config: config, layout: layout, routing: routing, peerID: peerID,
                                             network: network, failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota)
        } catch {
            // Not served, so not kept (a full disk cut its files short): the next attempt, or the
            // next start, creates it again from the catalogue.
            let graveyard = nextTempPath("delete")
            if (try? disk.rename(finalPath, graveyard)) != nil { try? disk.removeItem(graveyard) }
            throw error
        }
        collections[name] = collection
        if !indexes.isEmpty { try await collection.setIndexes(try Self.parseIndexes(indexes)) }
        logger.debug("Created collection", metadata: ["collection": "\(name)"])
    }

    private func setConfig(_ collection: Collection, _ updated: CollectionConfig) async throws(StorageError) {
        do {
            try disk.writeFileAtomically(joinPath(collection.path, "config.json"), try encodeJSON(updated))
        } catch {
            throw .writeFailed("cannot write config of collection `\(collection.name)`", error)
        }
        try await collection.replaceConfig(updated)
    }

    /// Deletes the collection with exactly this name (an alias does not delete its target, as in
    /// Qdrant) and its aliases. Returns false when there was no such collection.
    func deleteCollection(_ name: String) async throws(StorageError) -> Bool {
        guard let collection = collections.removeValue(forKey: name) else { return false }
        deleting.insert(name)
        defer { deleting.remove(name) }
        // Its shards write nothing more (a running optimization is not swapped in, and cannot
        // create the moved directories again); this does not wait for one to finish.
        await collection.close(waiting: false)
        let graveyard = nextTempPath("delete")
        do {
            try disk.rename(collection.path, graveyard)
            try disk.syncDirectory(collectionsPath)
        } catch {
            collections[name] = try? Collection.open(name: name, path: collection.path, config: await collection.config,
                                                     layout: await collection.layout, peerID: peerID, network: network,
                                                     failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota)
            throw .serviceError("cannot delete collection `\(name)`: \(error)")
        }
        let remaining = aliases.filter { $0.value != name }
        if remaining.count != aliases.count {
            try saveAliases(remaining)
            aliases = remaining
        }
        do {
            try disk.removeItem(graveyard)
        } catch {
            logger.warning("Could not remove files of deleted collection; they go at next start", metadata: ["error": "\(error)"])
        }
        logger.debug("Deleted collection", metadata: ["collection": "\(name)"])
        return true
    }

    /// Fsyncs every collection's `wait=false` writes and persists segments that are due (called
    /// once a second); with `force`, persists everything now (at shutdown).
    public func flushAll(force: Bool = false) async throws(StorageError) {
        var failure: StorageError?
        for collection in collections.values {
            do {
                if force {
                    try await collection.persist()
                } else {
                    try await collection.flushIfDue()
                }
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }

    /// Runs every collection's due optimizations (called by the optimizer service).
    public func optimizeAll() async throws(StorageError) {
        for collection in collections.values { try await collection.optimize() }
    }

    static func parseIndexes(_ indexes: [String: JSONValue]) throws(StorageError) -> [String: PayloadFieldSchema] {
        var schema: [String: PayloadFieldSchema] = [:]
        for (field, value) in indexes {
            do {
                schema[field] = try PointsJSON.fieldSchema(value, field)
            } catch {
                throw .serviceError("bad payload index schema for `\(field)` in the catalogue: \(error)")
            }
        }
        return schema
    }

    // MARK: Changes

    /// Brings this node's collections and aliases to `state` (the consensus catalogue, a cluster's
    /// or a single node's): creates what is missing, deletes what is gone, and rewrites
    /// configurations, layouts and payload indexes that changed. Idempotent. Every change to the
    /// catalogue comes through here.
    public func reconcile(with state: ClusterMetadata) async throws(StorageError) {
        for name in collections.keys.sorted() where state.collections[name] == nil && !recovering.contains(name) {
            _ = try await deleteCollection(name)
        }
        for (name, config) in state.collections.sorted(by: { $0.key < $1.key }) where !recovering.contains(name) {
            // A catalogue from before shard placement has no layout: the collection keeps its own.
            let layout = state.shards[name]
            let indexes = state.payloadIndexes[name]
            if let existing = collections[name] {
                if await existing.config != config { try await setConfig(existing, config) }
                try await existing.applyTransfers(state.transfers[name] ?? [])
                if let layout { try await existing.applyLayout(layout, routing: state.routing[name] ?? .legacy) }
                if let indexes, await existing.payloadSchema.mapValues(\.json) != indexes {
                    try await existing.setIndexes(try Self.parseIndexes(indexes))
                }
            } else {
                try await createCollection(name, config: config, layout: layout ?? ShardPlacement.initial(config, peers: [peerID]),
                                           routing: state.routing[name] ?? .legacy,
                                           indexes: indexes ?? [:])
            }
        }
        let wanted = state.aliases.filter { collections[$0.value] != nil }
        if wanted != aliases {
            try saveAliases(wanted)
            aliases = wanted
        }
    }

    /// The catalogue as this node holds it, every replica on this peer and `Active`: a single node's
    /// starting state, and a cluster's when `--reinit` re-founds it.
    public func currentMetadata() async -> ClusterMetadata {
        var state = ClusterMetadata()
        for (name, collection) in collections {
            state.collections[name] = await collection.config
            let routing = await collection.routing
            state.shards[name] = await collection.layout.map { shard in
                // A resharding goes on: a new shard not yet read keeps its state.
                let adding = routing.resharding.map { $0.direction == .up && $0.shard == shard.id && !$0.readsNew } ?? false
                return ShardInfo(id: shard.id, key: shard.key, peers: [peerID], states: adding ? [peerID: .resharding] : [:])
            }
            if routing != .legacy {
                state.routing[name] = routing
                // Its copies are all on this peer now, made or not.
                state.routing[name]!.resharding?.copied = []
            }
            state.payloadIndexes[name] = await collection.payloadSchema.mapValues(\.json)
        }
        state.aliases = aliases
        state.quota = quota?.stored
        return state
    }

    // MARK: Files

    private func saveAliases(_ mapping: [String: String]) throws(StorageError) {
        do {
            try disk.writeFileAtomically(aliasesPath, try encodeJSON(SortedMap(mapping)))
        } catch {
            throw .writeFailed("cannot write aliases", error)
        }
    }

    func nextTempPath(_ purpose: String) -> String {
        tempCounter += 1
        return joinPath(tempPath, "\(purpose)-\(tempCounter)-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Names in `storage.temp_path` start so; those left over are removed at the next start.
    static let scratchPrefix = "quiver-"

    /// A new path in the scratch space (`storage.temp_path`, else `tmp/`): for snapshots being
    /// written, downloaded or uploaded, which need not be on the storage's file system.
    func nextScratchPath(_ purpose: String) -> String {
        guard let scratchPath else { return nextTempPath(purpose) }
        tempCounter += 1
        return joinPath(scratchPath, "\(Self.scratchPrefix)\(purpose)-\(tempCounter)-\(UInt32.random(in: 0...UInt32.max))")
    }

    private func listDirectory(_ path: String) throws(StorageError) -> [String] {
        do {
            return try disk.listDirectory(path)
        } catch {
            throw .serviceError("cannot list \(path): \(error)")
        }
    }

    func readJSON<T: Decodable>(_ path: String) throws(StorageError) -> T {
        do {
            return try JSONValueDecoder().decode(T.self, from: try disk.readFile(path))
        } catch {
            throw .serviceError("cannot read \(path): \(error). The file is damaged; restore it from a snapshot or remove the collection directory.")
        }
    }

    private func encodeJSON(_ value: some Encodable) throws(StorageError) -> [UInt8] {
        do {
            return try JSONValueEncoder().encodeBytes(value)
        } catch {
            throw .serviceError("cannot encode \(type(of: value)): \(error)")
        }
    }
}
