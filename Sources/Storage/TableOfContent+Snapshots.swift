import Foundation
public import DiskIO
import Logging
import QuiverJSON
public import QuiverModel
import Shard

/// What telemetry reports of a collection's snapshots (`CollectionSnapshotTelemetry`).
public struct SnapshotActivity: Sendable, Equatable {
    public var running = 0
    public var recovering = 0
    /// Snapshots written since the start.
    public var created = 0

    public init() {}
}

/// Collection snapshots: archives of this peer's part of a collection, in
/// `<snapshotsPath>/<collection>/`, each with a `.checksum` file (the archive's SHA-256) beside it.
extension TableOfContent {
    static let snapshotSuffix = ".snapshot"
    static let checksumSuffix = ".checksum"

    /// Where the snapshots of a collection, or of one of its shards, are kept.
    func snapshotDirectory(_ collection: String, shard: UInt32? = nil) -> String {
        guard let shard else { return joinPath(snapshotsPath, collection) }
        return joinPath(snapshotsPath, collection, "shards", String(shard))
    }

    /// A new path in the scratch space (emptied at start-up), for an upload or a download.
    public func temporaryPath(_ purpose: String) -> String { nextScratchPath(purpose) }

    /// Writes a snapshot of collection `name` (or the collection an alias names) while writes
    /// continue: each local shard pauses its writes only while its appendable segments are
    /// persisted and the files that change in place are copied (see `LocalShard.snapshot(into:)`).
    /// The archive appears under its final name only once complete.
    /// With `shard`, a snapshot of that local shard alone.
    public func createSnapshot(_ name: String, shard: UInt32? = nil, now: Int64) async throws(StorageError) -> SnapshotDescription {
        let collection = try collection(name)
        try requireRoom(disk.directoryBytes(shard.map { joinPath(collection.path, String($0)) } ?? collection.path), for: "The snapshot")
        let scope = shard.map { "shard-\($0)-" } ?? ""
        let snapshotName = "\(collection.name)-\(scope)\(peerID)-\(Self.nameTime(now))\(Self.snapshotSuffix)"
        snapshotActivity[collection.name, default: SnapshotActivity()].running += 1
        defer { snapshotActivity[collection.name]?.running -= 1 }
        let staging = nextScratchPath("snapshot")
        defer { try? disk.removeItem(staging) }
        if let shard {
            try await collection.writeShardSnapshot(shard, into: staging)
        } else {
            try await collection.writeSnapshot(into: staging)
        }
        let archive = try await store(staging, as: joinPath(snapshotDirectory(collection.name, shard: shard), snapshotName))
        snapshotActivity[collection.name, default: SnapshotActivity()].created += 1
        logger.info("Created a snapshot", metadata: ["collection": "\(collection.name)", "snapshot": "\(snapshotName)"])
        return try describeSnapshot(at: archive)
    }

    /// Refuses work that writes about `bytes` more to the storage's disk unless they fit with the
    /// disk's reserve left free: refused up front rather than failing half-way on a full disk.
    public func requireRoom(_ bytes: UInt64, for what: String) throws(StorageError) {
        if let refusal = space?.room(for: bytes) { throw .insufficientStorage("\(what) is refused: \(refusal)") }
    }

    /// Archives the tree `staging` as `archive` with its checksum file; the archive appears under
    /// its name only once complete.
    func store(_ staging: String, as archive: String) async throws(StorageError) -> String {
        let partial = archive + ".partial"
        defer { try? disk.removeItem(partial) }
        let directory = parentDirectory(of: archive)
        do {
            try disk.createDirectories(directory)
        } catch {
            throw .serviceError("cannot create the snapshot directory \(directory): \(error)")
        }
        let progress = SnapshotProgress("Writing snapshot \(archive.split(separator: "/").last ?? "")", logger: logger)
        let written = try await offActor { [disk] () throws(StorageError) in
            try SnapshotArchive.write(staging, to: partial, disk: disk, progress: progress)
        }
        do {
            try disk.writeFileAtomically(archive + Self.checksumSuffix, Array(written.sha256.utf8))
            try disk.rename(partial, archive)
            try disk.syncDirectory(directory)
        } catch {
            throw .writeFailed("cannot store snapshot \(archive)", error)
        }
        return archive
    }

    /// The snapshots of collection `name` (or of its shard `shard`), by name.
    public func listSnapshots(_ name: String, shard: UInt32? = nil) async throws(StorageError) -> [SnapshotDescription] {
        let collection = try collection(name)
        if let shard { try await collection.checkLocalShard(shard) }
        return try describeSnapshots(in: snapshotDirectory(collection.name, shard: shard))
    }

    /// The snapshot archives directly in `directory`, by name.
    func describeSnapshots(in directory: String) throws(StorageError) -> [SnapshotDescription] {
        guard disk.isDirectory(directory) else { return [] }
        let names: [String]
        do {
            names = try disk.listDirectory(directory)
        } catch {
            throw .serviceError("cannot list snapshots: \(error)")
        }
        var result: [SnapshotDescription] = []
        for name in names where name.hasSuffix(Self.snapshotSuffix) && !disk.isDirectory(joinPath(directory, name)) {
            result.append(try describeSnapshot(at: joinPath(directory, name)))
        }
        return result
    }

    /// The archive `snapshot` in `directory`, which must exist.
    func snapshotFile(_ snapshot: String, in directory: String) throws(StorageError) -> String {
        let path = joinPath(directory, snapshot)
        guard Self.isSnapshotName(snapshot), disk.fileExists(path), !disk.isDirectory(path) else {
            throw .notFound("Snapshot \(snapshot) not found")
        }
        return path
    }

    /// The path of snapshot `snapshot` of collection `name` (or of its shard `shard`), which must exist.
    public func snapshotPath(_ name: String, _ snapshot: String, shard: UInt32? = nil) throws(StorageError) -> String {
        try snapshotFile(snapshot, in: snapshotDirectory(try collection(name).name, shard: shard))
    }

    /// Deletes snapshot `snapshot` of collection `name` (or of its shard `shard`) and its checksum file.
    public func deleteSnapshot(_ name: String, _ snapshot: String, shard: UInt32? = nil) throws(StorageError) {
        try removeSnapshot(at: try snapshotPath(name, snapshot, shard: shard))
    }

    /// The description of the archive at `path`, with its checksum file's content.
    func describeSnapshot(at path: String) throws(StorageError) -> SnapshotDescription {
        let name = String(path.split(separator: "/").last ?? "")
        do {
            let status = try disk.status(path)
            let checksumPath = path + Self.checksumSuffix
            let checksum = disk.fileExists(checksumPath) ? String(decoding: try disk.readFile(checksumPath), as: UTF8.self) : nil
            return SnapshotDescription(name: name, creationTime: Self.isoTime(status.modified), size: status.size, checksum: checksum)
        } catch {
            throw .serviceError("cannot read snapshot \(name): \(error)")
        }
    }

    /// Deletes the archive at `path` and its checksum file.
    func removeSnapshot(at path: String) throws(StorageError) {
        do {
            try disk.removeItem(path + Self.checksumSuffix)
            try disk.removeItem(path)
        } catch {
            throw .serviceError("cannot delete snapshot \(path.split(separator: "/").last ?? ""): \(error)")
        }
    }

    /// A name a snapshot can have here: one path component ending in `.snapshot`.
    static func isSnapshotName(_ name: String) -> Bool {
        name.hasSuffix(snapshotSuffix) && !name.contains("/") && !name.hasPrefix(".") && !name.contains("\0")
    }

    // MARK: Recovery

    /// What a snapshot holds, read from its extracted files before anything is replaced.
    public struct RecoveredCollection: Sendable {
        public var config: CollectionConfig
        public var layout: [ShardInfo]
        public var payloadIndexes: [String: JSONValue]
        /// How its points are spread over its shards (without a resharding).
        public var routing: ShardRouting = .legacy
    }

    /// Replaces the data of collection `name` with the snapshot archive `archive`, or creates the
    /// collection from it when missing. An existing collection keeps its configuration and payload
    /// indexes (as in Qdrant; the snapshot's vectors and shard number must match them) unless
    /// `replacingConfiguration` (`--force-snapshot` at start-up), which takes the snapshot's too.
    /// The archive is checked against `checksum` when given, extracted and checked in `tmp/`, and
    /// then swapped with the collection's directory in one atomic step, so after a crash the
    /// collection is either the old one or the recovered one, whole. Returns what the catalogue
    /// must now say about the collection. From the start until ``finishRecovery(_:)`` (or a
    /// failure), reconciling with the catalogue leaves the collection alone, and a second
    /// recovery of it is refused.
    public func recoverCollection(_ name: String, from archive: String, checksum: String?,
                                  replacingConfiguration: Bool = false) async throws(StorageError) -> RecoveredCollection {
        if aliases[name] != nil { throw .alreadyExists("Alias `\(name)` already exists!") }
        if collections[name] == nil { try checkCollectionLimit(name) }
        try reserve(name)
        var done = false
        defer { if !done { recovering.remove(name) } }
        let snapshot = try await extractCollectionSnapshot(archive, checksum: checksum)
        defer { discard(snapshot) }
        let extracted = snapshot.directory
        var recovered = snapshot.contents
        let target = joinPath(collectionsPath, name)
        if collections[name] != nil && !replacingConfiguration {
            recovered = try keepConfiguration(of: target, over: extracted, recovered)
        }
        // No optimization of the old collection may write into the directory once it has moved.
        let old = collections[name]
        await old?.close()
        do {
            if old != nil || disk.isDirectory(target) {
                try disk.exchange(extracted, target)
            } else {
                try disk.rename(extracted, target)
            }
        } catch {
            if let old { await reopen(old) }
            throw .serviceError("cannot put the recovered collection `\(name)` in place: \(error)")
        }
        // From here the recovered files are in place; `extracted` holds the old ones.
        do {
            try disk.syncDirectory(collectionsPath)
        } catch {
            logger.error("Could not fsync the collections directory after a recovery", metadata: ["error": "\(error)"])
        }
        do {
            collections[name] = try Collection.open(name: name, path: target, config: recovered.config, layout: recovered.layout,
                                                    peerID: peerID, network: network, failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota)
        } catch {
            // The snapshot's files do not open: the old collection goes back, if it can.
            if let old {
                do {
                    try disk.exchange(extracted, target)
                    try? disk.syncDirectory(collectionsPath)
                    await reopen(old)
                } catch {
                    // Both versions stay on disk; the old one is kept out of `tmp/` so nothing removes it.
                    let kept = joinPath(collectionsPath, ".\(name).before-recovery-\(UInt32.random(in: 0...UInt32.max))")
                    try? disk.rename(extracted, kept)
                    collections[name] = nil
                    logger.critical("A failed recovery could not put collection \(name) back; its old files are in \(kept)")
                }
            } else {
                try? disk.removeItem(target)
            }
            throw .badRequest("The snapshot cannot be opened: \(error)")
        }
        done = true
        logger.info("Recovered a collection from a snapshot", metadata: ["collection": "\(name)"])
        return recovered
    }

    /// Marks `name` as being recovered: refused while it is recovered or deleted already.
    private func reserve(_ name: String) throws(StorageError) {
        guard !recovering.contains(name), !deleting.contains(name), !recoveringShards.contains(where: { $0.collection == name }) else {
            throw .badRequest("Collection `\(name)` is being recovered or deleted; try again once that is over")
        }
        recovering.insert(name)
    }

    /// Runs `body` on the global executor rather than the actor.
    nonisolated func offActor<T: Sendable>(_ body: @Sendable () throws(StorageError) -> T) async throws(StorageError) -> T {
        try body()
    }

    /// A collection snapshot extracted and checked in `tmp/`, and what it holds; the shards'
    /// files are in `<directory>/<id>`. ``discard(_:)`` removes it.
    public struct ExtractedSnapshot: Sendable {
        public let directory: String
        public let contents: RecoveredCollection
    }

    /// Checks `archive` against `checksum` (when given) and the free space, and extracts it in `tmp/`.
    public func extractCollectionSnapshot(_ archive: String, checksum: String?) async throws(StorageError) -> ExtractedSnapshot {
        let directory = try await extractSnapshot(archive, checksum: checksum)
        do {
            return ExtractedSnapshot(directory: directory, contents: try readRecovered(directory))
        } catch {
            try? disk.removeItem(directory)
            throw error
        }
    }

    /// `archive` checked against `checksum` (when given) and the free space, and extracted into a
    /// new directory in `tmp/`, which the caller removes. The archive's bytes are read and written
    /// off the actor: other requests go on meanwhile.
    public func extractSnapshot(_ archive: String, checksum: String?) async throws(StorageError) -> String {
        let staging = nextTempPath("recover")
        let progress = SnapshotProgress("Extracting snapshot \(archive.split(separator: "/").last ?? "")", logger: logger)
        do {
            try await offActor { [disk, tempPath] () throws(StorageError) in
                try Self.verify(archive, checksum: checksum, room: tempPath, disk: disk)
                try SnapshotArchive.extract(archive, into: staging, disk: disk, progress: progress)
            }
        } catch {
            try? disk.removeItem(staging)
            throw error
        }
        return staging
    }

    public func discard(_ snapshot: ExtractedSnapshot) {
        try? disk.removeItem(snapshot.directory)
    }

    /// Refuses a snapshot whose vectors or shards are not those of existing collection `name`.
    public func checkCompatible(_ name: String, with snapshot: ExtractedSnapshot) async throws(StorageError) {
        let collection = try collection(name)
        try Self.checkCompatible(current: RecoveredCollection(config: await collection.config, layout: await collection.layout, payloadIndexes: [:],
                                                              routing: await collection.routing),
                                 snapshot: snapshot.contents, whole: false)
    }

    /// Replaces local shard `shard` of collection `name` with the shard files in `directory` (an
    /// extracted shard snapshot, or a shard's directory in an extracted collection snapshot), which
    /// they leave. The old shard stays in place when they do not open as a shard of the collection.
    /// The caller holds the shard's reservation (``reserveShard(_:shard:)``).
    public func recoverShard(_ name: String, shard: UInt32, fromFiles directory: String) async throws(StorageError) {
        let collection = try collection(name)
        try await collection.checkLocalShard(shard)
        guard disk.isDirectory(directory) else { throw .badRequest("The snapshot holds no files for shard \(shard)") }
        try await collection.replaceShard(shard, with: directory)
        logger.info("Recovered a shard from a snapshot", metadata: ["collection": "\(collection.name)", "shard": "\(shard)"])
    }

    /// Marks shard `shard` of `name` as being recovered: refused while it, or the whole
    /// collection, is recovered or deleted already.
    public func reserveShard(_ name: String, shard: UInt32) throws(StorageError) {
        let ref = ShardRef(collection: name, shard: shard)
        guard !recovering.contains(name), !deleting.contains(name), !recoveringShards.contains(ref) else {
            throw .badRequest("Shard \(shard) of collection `\(name)` is being recovered, or the collection deleted; try again once that is over")
        }
        recoveringShards.insert(ref)
    }

    /// Ends the reservation ``reserveShard(_:shard:)`` took.
    public func releaseShard(_ name: String, shard: UInt32) {
        recoveringShards.remove(ShardRef(collection: name, shard: shard))
    }

    /// Refuses `archive` unless its SHA-256 is `checksum` (when given), and unless `room` has space
    /// for its extracted content (at most the archive's size) before anything is written.
    static func verify(_ archive: String, checksum: String?, room: String, disk: any Disk) throws(StorageError) {
        do {
            let needed = try disk.status(archive).size
            let available = try disk.availableBytes(room)
            guard needed < available else {
                throw StorageError.serviceError("Not enough free disk space to recover the snapshot: it needs \(needed) bytes, \(available) are free in \(room)")
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw .serviceError("cannot read the snapshot archive: \(error)")
        }
        guard let checksum else { return }
        let actual = try SnapshotArchive.sha256(of: archive, disk: disk)
        guard actual == checksum.lowercased() else {
            throw .badRequest("Snapshot checksum mismatch: expected \(checksum), got \(actual)")
        }
    }

    /// A recovery of collection `name` starts (`true`) or ends, for telemetry.
    public func noteRecovery(_ name: String, running: Bool) {
        snapshotActivity[name, default: SnapshotActivity()].recovering += running ? 1 : -1
    }

    /// The catalogue has taken (or failed to take) the recovery of collection `name`.
    public func finishRecovery(_ name: String) {
        recovering.remove(name)
    }

    /// Opens again, from its files, a collection closed for a recovery that did not happen.
    private func reopen(_ old: Collection) async {
        collections[old.name] = try? Collection.open(name: old.name, path: old.path, config: await old.config, layout: await old.layout,
                                                     peerID: peerID, network: network, failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota)
    }

    /// Puts the configuration, payload indexes and layout of the collection in `existing` into the
    /// extracted snapshot `extracted`, after checking that the snapshot's data fits them.
    private func keepConfiguration(of existing: String, over extracted: String,
                                   _ snapshot: RecoveredCollection) throws(StorageError) -> RecoveredCollection {
        let current = try readRecovered(existing)
        // The recovered directory replaces the whole collection: it must hold every shard.
        try Self.checkCompatible(current: current, snapshot: snapshot, whole: true)
        do {
            for file in ["config.json", Collection.payloadIndexFile, Collection.layoutFile, Collection.routingFile] {
                try? disk.removeItem(joinPath(extracted, file))
                if disk.fileExists(joinPath(existing, file)) { try disk.copyFile(joinPath(existing, file), joinPath(extracted, file)) }
            }
            try disk.syncDirectory(extracted)
        } catch {
            throw .serviceError("cannot prepare the recovered collection: \(error)")
        }
        return current
    }

    /// The snapshot's vectors and shards must be the collection's (as Qdrant checks), all of
    /// them when `whole`, else some (a snapshot taken on one peer of a cluster).
    private static func checkCompatible(current: RecoveredCollection, snapshot: RecoveredCollection, whole: Bool) throws(StorageError) {
        guard current.config.params.vectors == snapshot.config.params.vectors else {
            throw .badInput("Snapshot is not compatible with existing collection: Collection vectors: \(Self.json(current.config.params.vectors)) Snapshot Vectors: \(Self.json(snapshot.config.params.vectors))")
        }
        let theirs = Set(snapshot.layout.map(\.id)), ours = Set(current.layout.map(\.id))
        guard current.config.params.shardNumber == snapshot.config.params.shardNumber,
              whole ? theirs == ours : theirs.isSubset(of: ours) else {
            throw .badInput("Snapshot is not compatible with existing collection: Collection shard number: \(current.config.params.shardNumber) Snapshot shard number: \(snapshot.config.params.shardNumber)")
        }
        guard current.routing.ring == snapshot.routing.ring else {
            throw .badInput("Snapshot is not compatible with existing collection: its points are spread over the shards by \(snapshot.routing.ring.rawValue) routing, the collection's by \(current.routing.ring.rawValue)")
        }
    }

    private static func json(_ value: some Encodable) -> String {
        (try? JSONValueEncoder().encodeBytes(value)).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
    }

    /// The configuration, shard layout (every shard on this peer) and payload indexes of an
    /// extracted collection snapshot (or a collection's directory), with its shards' files present.
    private func readRecovered(_ directory: String) throws(StorageError) -> RecoveredCollection {
        func read<T: Decodable>(_ file: String, _ type: T.Type) throws(StorageError) -> T? {
            let path = joinPath(directory, file)
            guard disk.fileExists(path) else { return nil }
            do {
                return try JSONValueDecoder().decode(T.self, from: try disk.readFile(path))
            } catch {
                throw .badRequest("The snapshot's \(file) is not valid: \(error)")
            }
        }
        guard let config = try read("config.json", CollectionConfig.self) else {
            throw .badRequest("The archive is not a collection snapshot: it has no config.json")
        }
        let shards = try read(Collection.layoutFile, [ShardInfo].self) ?? []
        for shard in shards where !disk.isDirectory(joinPath(directory, String(shard.id))) {
            throw .badRequest("The snapshot lists shard \(shard.id) but holds no files for it")
        }
        let indexes = try read(Collection.payloadIndexFile, [String: JSONValue].self) ?? [:]
        _ = try Self.parseIndexes(indexes)
        let routing = try read(Collection.routingFile, ShardRouting.self).map { ShardRouting(ring: $0.ring) } ?? .legacy
        return RecoveredCollection(config: config, layout: shards.map { ShardInfo(id: $0.id, key: $0.key, peers: [peerID]) },
                                   payloadIndexes: indexes, routing: routing)
    }

    // MARK: Time

    /// `YYYY-MM-DD-HH-MM-SS` (UTC), as snapshot names carry it.
    static func nameTime(_ seconds: Int64) -> String {
        String(isoTime(seconds).map { $0 == "T" || $0 == ":" ? "-" : $0 })
    }

    /// `YYYY-MM-DDTHH:MM:SS` (UTC), as `creation_time`.
    static func isoTime(_ seconds: Int64) -> String {
        String(Date(timeIntervalSince1970: TimeInterval(seconds)).rfc3339.prefix(19))
    }
}

/// Full storage snapshots: every collection's snapshot and the aliases, in one archive in
/// `<snapshotsPath>/`, with `config.json` mapping collection names to their archives.
extension TableOfContent {
    struct FullSnapshotManifest: Codable {
        /// collection → its snapshot archive in the full archive
        var collections: [String: String]
        /// alias → collection
        var aliases: [String: String]
    }

    /// Snapshots every collection (one after another) and packs them with the aliases.
    public func createFullSnapshot(now: Int64) async throws(StorageError) -> SnapshotDescription {
        let name = "full-snapshot-\(Self.nameTime(now))\(Self.snapshotSuffix)"
        // Each collection's archive, then the archive of those.
        try requireRoom(2 * disk.directoryBytes(collectionsPath), for: "The full snapshot")
        let staging = nextScratchPath("full-snapshot")
        defer { try? disk.removeItem(staging) }
        var manifest = FullSnapshotManifest(collections: [:], aliases: aliases)
        do {
            try disk.createDirectories(staging)
        } catch {
            throw .serviceError("cannot prepare the full snapshot: \(error)")
        }
        for collection in collectionNames {
            let snapshot = try await createSnapshot(collection, now: now)
            let path = joinPath(snapshotDirectory(collection), snapshot.name)
            do {
                // A copy where the snapshots directory is on another file system than the storage.
                do {
                    try disk.rename(path, joinPath(staging, snapshot.name))
                } catch {
                    try disk.copyFile(path, joinPath(staging, snapshot.name))
                    try disk.removeItem(path)
                }
                try disk.removeItem(path + Self.checksumSuffix)
            } catch {
                throw .serviceError("cannot add collection \(collection) to the full snapshot: \(error)")
            }
            manifest.collections[collection] = snapshot.name
        }
        do {
            try disk.writeFile(joinPath(staging, "config.json"), try JSONValueEncoder().encodeBytes(manifest))
        } catch {
            throw .serviceError("cannot write the full snapshot: \(error)")
        }
        let archive = try await store(staging, as: joinPath(snapshotsPath, name))
        logger.info("Created a full storage snapshot", metadata: ["snapshot": "\(name)", "collections": "\(manifest.collections.count)"])
        return try describeSnapshot(at: archive)
    }

    public func listFullSnapshots() throws(StorageError) -> [SnapshotDescription] {
        try describeSnapshots(in: snapshotsPath)
    }

    public func fullSnapshotPath(_ snapshot: String) throws(StorageError) -> String {
        try snapshotFile(snapshot, in: snapshotsPath)
    }

    public func deleteFullSnapshot(_ snapshot: String) throws(StorageError) {
        try removeSnapshot(at: try fullSnapshotPath(snapshot))
    }

    /// Extracts a full snapshot into `tmp/` (emptied at the next start) and returns the
    /// collection archives it holds, by collection, and its aliases.
    public func unpackFullSnapshot(_ archive: String) throws(StorageError) -> (collections: [(path: String, collection: String)], aliases: [String: String]) {
        let directory = nextScratchPath("full-recovery")
        try SnapshotArchive.extract(archive, into: directory, disk: disk)
        let manifest: FullSnapshotManifest
        do {
            manifest = try JSONValueDecoder().decode(FullSnapshotManifest.self, from: try disk.readFile(joinPath(directory, "config.json")))
        } catch {
            throw .badRequest("The archive is not a full storage snapshot: \(error)")
        }
        var collections: [(path: String, collection: String)] = []
        for (name, file) in manifest.collections.sorted(by: { $0.key < $1.key }) {
            guard Self.isSnapshotName(file), disk.fileExists(joinPath(directory, file)) else {
                throw .badRequest("The full snapshot names `\(file)` for collection \(name) but does not hold it")
            }
            collections.append((joinPath(directory, file), name))
        }
        return (collections, manifest.aliases)
    }
}

/// The target side of `snapshot` transfers.
extension TableOfContent {
    /// Takes bytes `offset…` of the snapshot archive `transfer` sends to this peer's replica (in
    /// `Recovery`); with the `final` bytes, puts the snapshot in place of the replica, whose
    /// recovery point is then the snapshot's clocks.
    public func receiveTransferSnapshot(_ name: String, transfer: ShardTransfer, offset: UInt64, bytes: [UInt8],
                                        final: Bool) async throws(StorageError) {
        let collection = try collection(name)
        let state = await collection.layout.first { $0.id == transfer.shard }?.state(of: peerID)
        guard await collection.transfers.contains(transfer), transfer.to == peerID, transfer.method == .snapshot, state == .recovery else {
            throw .badRequest("Peer \(peerID) is not receiving a snapshot transfer of \(transfer.key) in collection `\(collection.name)`")
        }
        let archive = joinPath(tempPath, "transfer-\(collection.name)-\(transfer.shard)-\(transfer.started).tar")
        do {
            let file = try disk.open(archive, create: offset == 0)
            defer { file.close() }
            // A chunk sent again (its answer was lost) replaces what came of it.
            if try file.size() > offset { try file.truncate(to: offset) }
            guard try file.size() == offset else {
                throw StorageError.badRequest("The snapshot of \(transfer.key) came out of order: \(offset) bytes sent, \(try file.size()) received")
            }
            try file.write(bytes, at: offset)
            if final { try file.sync() }
        } catch let error as StorageError {
            try? disk.removeItem(archive)
            throw error
        } catch {
            try? disk.removeItem(archive)
            throw .serviceError("cannot write the snapshot of \(transfer.key): \(error)")
        }
        guard final else { return }
        defer { try? disk.removeItem(archive) }
        try reserveShard(collection.name, shard: transfer.shard)
        defer { releaseShard(collection.name, shard: transfer.shard) }
        let staging = try await extractSnapshot(archive, checksum: nil)
        defer { try? disk.removeItem(staging) }
        try await collection.replaceTransferTarget(transfer, with: staging)
        // What arrived ready to search: the vectors its graphs cover were not indexed here.
        let segments = await collection.shards[transfer.shard]?.telemetry(payloadSizes: false).segments ?? []
        logger.info("Recovered a shard from a transfer's snapshot", metadata: [
            "collection": "\(collection.name)", "shard": "\(transfer.shard)", "from": "\(transfer.from)",
            "points": "\(segments.reduce(0) { $0 + $1.points })",
            "indexed_vectors": "\(segments.reduce(0) { $0 + $1.indexedVectors.values.reduce(0, +) })",
        ])
    }
}
