import QuiverModel
import Shard

/// One peer's replicas of some of a collection's shards, as the write and read paths reach them
/// (DESIGN.md §6): the local shards of this peer (``LocalReplicas``) or another peer's over p2p
/// (``RemoteShard``). A call carries every shard that peer answers for, so a request costs one call
/// per peer whatever the number of its shards there.
protocol ShardReplica: Sendable {
    var peer: UInt64 { get }
    /// `request` over the replicas of `shards` on this peer, merged as the whole collection would.
    func read(_ request: ShardRequest, shards: [UInt32]) async throws(StorageError) -> ShardResponse
    /// Each shard's operation applied to its replica here, under its clock tag when `clocks` has one.
    func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                wait: Bool) async throws(StorageError) -> UpdateAck
}

/// This peer's replicas: the collection's `LocalShard`s, called directly.
struct LocalReplicas: ShardReplica {
    let collection: Collection
    let peer: UInt64

    func read(_ request: ShardRequest, shards: [UInt32]) async throws(StorageError) -> ShardResponse {
        try await collection.runLocal(request, shards: shards)
    }

    func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                wait: Bool) async throws(StorageError) -> UpdateAck {
        try await collection.applyLocal(operations, clocks: clocks, filter: filter, condition: condition, wait: wait)
    }
}

/// Another peer's replicas, reached over p2p. Also the way to hand an ordered write to a peer that
/// leads the shards' writes.
struct RemoteShard: ShardReplica {
    let network: any ShardNetwork
    let peer: UInt64
    let collection: String

    func read(_ request: ShardRequest, shards: [UInt32]) async throws(StorageError) -> ShardResponse {
        try await network.read(request, collection: collection, shards: shards, on: peer)
    }

    func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                wait: Bool) async throws(StorageError) -> UpdateAck {
        try await network.update(operations, clocks: clocks, filter: filter, condition: condition, collection: collection, wait: wait, on: peer)
    }

    /// The peer, as the shards' leader for `ordering`, replicates the write to every replica; its
    /// answer, or a throw when it was not reached.
    func forward(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, wait: Bool,
                 ordering: WriteOrdering) async throws(StorageError) -> Result<UInt64, StorageError> {
        try await network.forward(operations, filter: filter, condition: condition, collection: collection, wait: wait,
                                  ordering: ordering, to: peer)
    }
}
