public import DiskIO
public import Logging
public import QuiverModel
public import Storage

/// The operations of Quiver's API, independent of the protocol that carries them. REST and gRPC
/// adapters decode their request into model types, call one of these, and encode the result.
public struct QuiverService: Sendable {
    /// The Qdrant API version implemented; clients compare it with their own.
    public static let apiVersion = "1.19.0"
    public static let title = "quiver - vector search engine"

    public let toc: TableOfContent
    /// Where changes to collections, aliases, shards and payload indexes are proposed: the
    /// cluster's consensus, or a single node's one-member consensus. Either way a change applies
    /// on this peer (and every other) through the same ``ConsensusManager``.
    public let consensus: ConsensusManager
    /// The cluster this peer belongs to; nil on a single node.
    public let cluster: (any ClusterControl)?
    /// Fetches a snapshot from an `http(s)://` location into a file (the server's HTTP client).
    public let downloader: SnapshotDownloader?
    /// `cluster.resharding_enabled`: `start_resharding` is accepted (in a cluster).
    public let reshardingEnabled: Bool
    /// `service.max_request_memory_mb` in bytes: the most memory one read's results may need
    /// (estimated before it runs); nil: not limited.
    public let requestMemoryLimit: Int?

    public init(toc: TableOfContent, consensus: ConsensusManager, cluster: (any ClusterControl)? = nil, downloader: SnapshotDownloader? = nil,
                reshardingEnabled: Bool = true, requestMemoryLimit: Int? = nil) {
        self.requestMemoryLimit = requestMemoryLimit
        self.toc = toc
        self.consensus = consensus
        self.cluster = cluster
        self.downloader = downloader
        self.reshardingEnabled = reshardingEnabled
    }

    /// A single node's service over `toc` (loaded), with its one-member consensus.
    public static func standalone(toc: TableOfContent, disk: any Disk, logger: Logger, downloader: SnapshotDownloader? = nil,
                                  requestMemoryLimit: Int? = nil) async throws(StorageError) -> QuiverService {
        QuiverService(toc: toc, consensus: try await .standalone(toc: toc, disk: disk, logger: logger), downloader: downloader,
                      requestMemoryLimit: requestMemoryLimit)
    }

    // MARK: Collections

    public func collectionCount() async -> Int {
        await toc.collectionCount
    }

    /// The collections the request may read (all, but for a token naming collections).
    public func listCollections() async -> CollectionsResponse {
        CollectionsResponse(collections: await toc.collectionNames.filter(Access.mayRead).map(CollectionDescription.init))
    }

    public func collectionExists(_ name: String) async throws(ServiceError) -> CollectionExistence {
        try Access.require(name)
        return CollectionExistence(exists: await toc.collectionExists(name))
    }

    public func getCollection(_ name: String) async throws(ServiceError) -> CollectionInfo {
        try Access.require(name)
        do {
            return try await toc.collectionInfo(name)
        } catch {
            throw .storage(error)
        }
    }

    /// Refuses a change that adds data while the storage's disk is nearly full; with `quota`, also
    /// while the node is over a quota (as Qdrant refuses payload indexes and named vectors before
    /// proposing them).
    func requireWritableDisk(quota: Bool = false) throws(ServiceError) {
        if let refusal = toc.space?.admit() ?? (quota ? toc.quota?.refusal() : nil) { throw .storage(.insufficientStorage(refusal)) }
    }

    public func createCollection(_ name: String, _ request: CreateCollection, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validateNewCollectionName(name)
        try Self.validate(request)
        if let problem = request.vectorNamesProblem { throw .storage(.badInput(problem)) }
        try requireWritableDisk()
        do {
            try await toc.checkCollectionLimit(name)
        } catch {
            throw .storage(error)
        }
        let peers = await placementPeers()
        let config = toc.effectiveConfig(request, peers: peers.count)
        let started = ContinuousClock.now
        let created = try await propose(.createCollection(name: name, config: config, shards: ShardPlacement.initial(config, peers: peers).initializing,
                                                          routing: ShardRouting(ring: .jump)), timeout: timeout)
        await awaitActivation(of: name, shards: { _ in true }, since: started, timeout: timeout)
        return created
    }

    /// In a cluster, a lower `replication_factor` drops the replicas beyond it (a higher one gets
    /// new replicas from the transfer driver).
    public func updateCollection(_ name: String, _ request: UpdateCollection, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validate(request)
        let applied = try await propose(.updateCollection(name: name, update: request), timeout: timeout)
        if cluster != nil, let factor = request.params?.replicationFactor {
            try await dropReplicas(beyond: Int(factor), of: name, timeout: timeout)
        }
        return applied
    }

    /// Removes, from each shard of `name` with more than `factor` replicas, the surplus: replicas
    /// that are not `Active` first, then those on the peers holding the most replicas of the
    /// collection (ties to the highest id); never a shard's last `Active` replica.
    func dropReplicas(beyond factor: Int, of name: String, timeout: Duration?) async throws(ServiceError) {
        let resolved = consensus.metadata.aliases[name] ?? name
        guard let layout = consensus.metadata.shards[resolved] else { return }
        var load: [UInt64: Int] = [:]
        for shard in layout { for peer in shard.peers { load[peer, default: 0] += 1 } }
        for shard in layout where shard.peers.count > factor {
            // Not active first, then the most loaded peer, then the highest id.
            let order = shard.peers.sorted { a, b in
                let (activeA, activeB) = (shard.state(of: a).isActive, shard.state(of: b).isActive)
                if activeA != activeB { return !activeA }
                if load[a] != load[b] { return (load[a] ?? 0) > (load[b] ?? 0) }
                return a > b
            }
            for peer in order.prefix(shard.peers.count - factor) {
                _ = try await propose(.removeReplica(collection: resolved, shard: shard.id, peer: peer), timeout: timeout)
                load[peer, default: 1] -= 1
            }
        }
    }

    /// False when there was no collection of that name (as in Qdrant, not an error).
    public func deleteCollection(_ name: String, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        return try await propose(.deleteCollection(name: name), timeout: timeout)
    }

    // MARK: Aliases

    public func updateAliases(_ request: ChangeAliasesOperation, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validate(request)
        return try await propose(.changeAliases(request.actions), timeout: timeout)
    }

    /// The aliases whose names the request may read.
    public func listAliases() async -> CollectionsAliasesResponse {
        CollectionsAliasesResponse(aliases: await toc.listAliases().filter { Access.mayRead($0.aliasName) })
    }

    public func collectionAliases(_ name: String) async throws(ServiceError) -> CollectionsAliasesResponse {
        try Access.require(name)
        do {
            return CollectionsAliasesResponse(aliases: try await toc.aliases(of: name))
        } catch {
            throw .storage(error)
        }
    }

    // MARK: Validation

    static func validate(_ request: some Validatable) throws(ServiceError) {
        do {
            _ = try request.validated()
        } catch {
            throw .validation(error, .body)
        }
    }

    /// New collections get the strict name rules; existing ones are looked up by any name.
    static func validateNewCollectionName(_ name: String) throws(ServiceError) {
        if let problem = NameRules.collectionNameProblem(name) {
            var errors = ValidationErrors()
            errors.add("collection_name", problem)
            throw .validation(errors, .path)
        }
    }
}

extension QuiverService {
    /// `PUT /collections/{c}/vectors/{name}` (`vector` given) and `DELETE` (nil): through
    /// consensus, so every peer's shards take the new vectors; with `wait`, this peer's have
    /// before the answer.
    public func setNamedVector(_ collectionName: String, _ name: String, _ vector: NamedVectorConfig?, wait: Bool,
                               timeout: Duration? = nil) async throws(ServiceError) -> UpdateResult {
        try Access.require(collectionName, write: true, extras: true)
        let collection = try await collection(collectionName)
        if vector != nil, let problem = name.isEmpty ? "vector name must not be empty" : NameRules.vectorNameProblem(name) {
            var errors = ValidationErrors()
            errors.add("vector_name", problem)
            throw .validation(errors, .path)
        }
        let (dense, sparse): (VectorParams?, SparseVectorParams?) = switch vector {
        case .dense(let params)?: (params, nil)
        case .sparse(let params)?: (nil, params)
        case nil: (nil, nil)
        }
        if vector != nil { try requireWritableDisk(quota: true) }
        _ = try await propose(.setNamedVector(collection: collection.name, name: name, dense: dense, sparse: sparse), timeout: timeout)
        return UpdateResult(operationId: nil, status: wait ? .completed : .acknowledged)
    }
}
