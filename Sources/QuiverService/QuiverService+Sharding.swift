public import QuiverModel
import Storage

/// Shard keys, collection cluster info and the local shard API.
extension QuiverService {
    /// Peer ids of the cluster (this peer alone on a single node).
    func peerIDs() async -> [UInt64] {
        guard let cluster else { return [consensus.peerId] }
        return cluster.status().peers.keys.compactMap { UInt64($0) }.sorted()
    }

    /// The peers new shards go on: the members, draining ones left out (unless all are).
    func placementPeers() async -> [UInt64] {
        let peers = await peerIDs()
        let draining = consensus.metadata.drainingPeers
        let placeable = peers.filter { !draining.contains($0) }
        return placeable.isEmpty ? peers : placeable
    }

    /// `PUT /collections/{c}/shards`: the proposer places the key's shards over the peers (or those
    /// of `placement`) before proposing, so every peer creates the same ones.
    public func createShardKey(_ name: String, _ request: CreateShardingKey, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validate(request)
        let collection = try await collection(name)
        var peers = await placementPeers()
        if let placement = request.placement {
            if let unknown = placement.first(where: { !peers.contains($0) }) {
                throw .storage(.badRequest("Peer \(unknown) is not a member of the cluster"))
            }
            peers = placement
        }
        let placed = await collection.placeShardKey(request, peers: peers)
        let started = ContinuousClock.now
        let created = try await propose(.createShardKey(collection: collection.name, shards: placed.initializing), timeout: timeout)
        await awaitActivation(of: collection.name, shards: { $0.key == request.shardKey }, since: started, timeout: timeout)
        return created
    }

    /// `POST /collections/{c}/shards/delete`: drops the key's shards and their points.
    public func dropShardKey(_ name: String, _ request: DropShardingKey, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        let collection = try await collection(name)
        return try await propose(.dropShardKey(collection: collection.name, key: request.shardKey), timeout: timeout)
    }

    /// `GET /collections/{c}/shards`: nil under automatic sharding.
    public func shardKeys(_ name: String) async throws(ServiceError) -> [ShardKey]? {
        try Access.require(name)
        return await (try collection(name)).shardKeys
    }

    public func collectionClusterInfo(_ name: String) async throws(ServiceError) -> CollectionClusterInfo {
        try Access.require(name, extras: true)
        return await (try collection(name)).clusterInfo()
    }

    // MARK: Local shard API

    /// Runs a read on one shard held by this peer (`/collections/{c}/shards/{id}/points…`).
    func onShard(_ name: String, _ shardID: UInt32, _ request: ShardRequest) async throws(ServiceError) -> (ShardResponse, Bool) {
        let collection = try await collection(name)
        do {
            return (try await collection.runLocal(request, shards: [shardID]), await Self.hasUnnamedVector(collection))
        } catch {
            throw .storage(error)
        }
    }

    public func shardRetrieve(_ name: String, shard: UInt32, _ request: RetrieveRequest) async throws(ServiceError) -> RecordsResult {
        try Access.require(name)
        try await checkWorkingMemory(rows: Double(request.ids.count), withVector: request.withVector, withPayload: request.withPayload, for: "retrieve", on: try await collection(name))
        let (response, unnamed) = try await onShard(name, shard, .retrieve(ids: request.ids, withPayload: request.withPayload, withVector: request.withVector))
        guard case .records(let records) = response else { return RecordsResult(records: [], unnamedVector: unnamed) }
        return RecordsResult(records: Collection.inRequestOrder(request.ids, records), unnamedVector: unnamed)
    }

    public func shardScroll(_ name: String, shard: UInt32, _ request: ScrollRequest) async throws(ServiceError) -> RecordsResult {
        try Access.require(name)
        let limit = try Self.scrollLimit(request)
        try await checkWorkingMemory(rows: Double(limit), withVector: request.withVector, withPayload: request.withPayload, for: "scroll", on: try await collection(name))
        let (response, unnamed) = try await onShard(name, shard, .scroll(offset: request.offset, limit: limit + 1, filter: request.filter,
                                                                         withPayload: request.withPayload, withVector: request.withVector))
        guard case .records(let records) = response else { return RecordsResult(records: [], unnamedVector: unnamed) }
        let (page, next) = Collection.page(records, limit: limit)
        return RecordsResult(records: page, unnamedVector: unnamed, nextPageOffset: next)
    }

    public func shardCount(_ name: String, shard: UInt32, _ request: CountRequest) async throws(ServiceError) -> Int {
        try Access.require(name)
        let (response, _) = try await onShard(name, shard, .count(filter: request.filter))
        if case .count(let n) = response { return n }
        return 0
    }
}
