public import QuiverModel
import Storage

/// `POST /collections/{c}/cluster`: moving and replicating shards, ending transfers, dropping
/// replicas and shard keys, through consensus. The source peer of a transfer drives it (see
/// `TransferDriver`); the answer comes once the change applies on this peer, not when the
/// transfer is done (as in Qdrant).
extension QuiverService {
    /// The method of a transfer whose request names none.
    static let defaultTransferMethod = ShardTransferMethod.streamRecords

    public func updateCollectionCluster(_ name: String, _ operation: ClusterOperation, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Self.validate(operation)
        guard cluster != nil else { throw .storage(.standaloneMode) }
        let collection = try await collection(name)
        let layout = await collection.layout
        let peers = await peerIDs()
        func shard(_ id: UInt32) throws(ServiceError) -> ShardInfo {
            guard let shard = layout.first(where: { $0.id == id }) else {
                throw .storage(.badRequest("Shard \(id) of \(collection.name) does not exist"))
            }
            return shard
        }
        func checkPeer(_ peer: UInt64) throws(ServiceError) {
            guard peers.contains(peer) else { throw .storage(.badRequest("Peer \(peer) does not exist")) }
        }
        func transfer(_ shardID: UInt32, from: UInt64, to: UInt64) throws(ServiceError) -> ShardTransfer.Key {
            let key = ShardTransfer.Key(shard: shardID, from: from, to: to)
            guard consensus.metadata.transfers[collection.name]?.contains(where: { $0.key == key }) == true else {
                throw .storage(.notFound("Shard transfer \(from) -> \(to) for collection \(collection.name):\(shardID) does not exist"))
            }
            return key
        }
        switch operation {
        case .moveShard(let body), .replicateShard(let body):
            let info = try shard(body.shardID)
            try checkPeer(body.toPeerID)
            try checkPeer(body.fromPeerID)
            if info.peers.contains(body.toPeerID) && info.state(of: body.toPeerID).isActive {
                throw .storage(.badRequest("Peer \(body.toPeerID) already has an active replica of shard \(body.shardID)"))
            }
            var sync = false
            if case .replicateShard = operation { sync = true }
            let method = body.method ?? Self.defaultTransferMethod
            try Self.checkSupported(method)
            let transfer = ShardTransfer(shard: body.shardID, from: body.fromPeerID, to: body.toPeerID, sync: sync, method: method)
            return try await propose(.startTransfer(collection: collection.name, transfer: transfer), timeout: timeout)
        case .abortTransfer(let body):
            let key = try transfer(body.shardID, from: body.fromPeerID, to: body.toPeerID)
            return try await propose(.abortTransfer(collection: collection.name, transfer: key, reason: "user request"), timeout: timeout)
        case .restartTransfer(let body):
            let key = try transfer(body.shardID, from: body.fromPeerID, to: body.toPeerID)
            let method = body.method ?? Self.defaultTransferMethod
            try Self.checkSupported(method)
            return try await propose(.restartTransfer(collection: collection.name, transfer: key, method: method), timeout: timeout)
        case .dropReplica(let body):
            let info = try shard(body.shardID)
            try checkPeer(body.peerID)
            guard info.peers.contains(body.peerID) else {
                throw .storage(.badRequest("Peer \(body.peerID) has no replica of shard \(body.shardID)"))
            }
            return try await propose(.removeReplica(collection: collection.name, shard: body.shardID, peer: body.peerID), timeout: timeout)
        case .createShardingKey(let body):
            return try await createShardKey(collection.name, body, timeout: timeout)
        case .dropShardingKey(let body):
            return try await dropShardKey(collection.name, body, timeout: timeout)
        case .unsupported(let name):
            throw .storage(.badRequest("`\(name)` is not supported by this version"))
        }
    }

    static func checkSupported(_ method: ShardTransferMethod) throws(ServiceError) {
        guard method != .reshardingStreamRecords else {
            throw .storage(.badRequest("Shard transfer method \(method.rawValue) is only for resharding; use stream_records, snapshot or wal_delta"))
        }
    }
}
