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
        try Access.require(name, write: true, extras: true, manage: true)
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
        /// The running transfer of `shardID` from `from` to `to` (into whichever shard).
        func transfer(_ shardID: UInt32, from: UInt64, to: UInt64) throws(ServiceError) -> ShardTransfer.Key {
            guard let running = consensus.metadata.transfers[collection.name]?.first(where: { $0.shard == shardID && $0.from == from && $0.to == to }) else {
                throw .storage(.notFound("Shard transfer \(from) -> \(to) for collection \(collection.name):\(shardID) does not exist"))
            }
            return running.key
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
        case .replicatePoints(let body):
            // As in Qdrant: one source shard, one target replica.
            func shards(of key: ShardKey) throws(ServiceError) -> [ShardInfo] {
                let matching = layout.filter { $0.key == key }
                guard !matching.isEmpty else { throw .storage(.badRequest("Shard key \(key) not found")) }
                return matching
            }
            let from = try shards(of: body.fromShardKey), to = try shards(of: body.toShardKey)
            guard from.count == 1, let source = from[0].peers.sorted().first(where: { from[0].state(of: $0).isActive }) else {
                throw .storage(from.count == 1
                    ? .badRequest("Shard \(from[0].id) of shard key \(body.fromShardKey) has no active replica")
                    : .badRequest("Only replicating from shard keys with exactly one shard is supported. Shard key \(body.fromShardKey) has \(from.count) shards"))
            }
            let targets = to.flatMap { shard in shard.peers.map { (shard: shard.id, peer: $0) } }
            guard targets.count == 1, let target = targets.first else {
                throw .storage(.badRequest("Only replicating to shard keys with exactly one replica is supported. Shard key \(body.toShardKey) has \(targets.count) replicas"))
            }
            do {
                _ = try await collection.prepare(body.filter)
            } catch {
                throw .storage(error)
            }
            let transfer = ShardTransfer(shard: from[0].id, from: source, to: target.peer, sync: true, method: .streamRecords,
                                         toShard: target.shard, filter: body.filter)
            return try await propose(.startTransfer(collection: collection.name, transfer: transfer), timeout: timeout)
        case .startResharding(let body):
            guard reshardingEnabled else { throw .storage(.badRequest("resharding is disabled on this peer (cluster.resharding_enabled: false)")) }
            if let peer = body.peerID { try checkPeer(peer) }
            let key = body.shardKey
            if let key, !layout.contains(where: { $0.key == key }) {
                throw .storage(.badRequest("sharding key \(key) does not exist for collection \(collection.name)"))
            }
            let group = layout.filter { $0.key == key }.sorted { $0.id < $1.id }
            let resharding: Resharding, added: ShardInfo?
            switch body.direction {
            case .up:
                // The new shard goes last, on the given peer or the one holding the fewest replicas.
                let id = (layout.map(\.id).max() ?? 0) + (layout.isEmpty ? 0 : 1)
                var load = Dictionary(uniqueKeysWithValues: await placementPeers().map { ($0, 0) })
                for shard in layout { for peer in shard.peers where load[peer] != nil { load[peer]! += 1 } }
                guard let peer = body.peerID ?? load.min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key else {
                    throw .storage(.badRequest("No peer to place the new shard on"))
                }
                resharding = Resharding(direction: .up, shard: id, peer: peer, key: key)
                added = ShardInfo(id: id, key: key, peers: [peer], states: [peer: .resharding])
            case .down:
                guard let last = group.last else { throw .storage(.badRequest("Collection \(collection.name) has no shards to remove")) }
                let holders = last.peers.filter { last.state(of: $0).isActive }.sorted()
                if let peer = body.peerID, !holders.contains(peer) {
                    throw .storage(.badRequest("Peer \(peer) holds no active replica of shard \(last.id)"))
                }
                guard let peer = body.peerID ?? holders.first else { throw .storage(.badRequest("Shard \(last.id) has no active replica")) }
                resharding = Resharding(direction: .down, shard: last.id, peer: peer, key: key)
                added = nil
            }
            return try await propose(.startResharding(collection: collection.name, resharding: resharding, added: added), timeout: timeout)
        case .abortResharding:
            return try await propose(.abortResharding(collection: collection.name), timeout: timeout)
        }
    }

    static func checkSupported(_ method: ShardTransferMethod) throws(ServiceError) {
        guard method != .reshardingStreamRecords else {
            throw .storage(.badRequest("Shard transfer method \(method.rawValue) is only for resharding; use stream_records, snapshot or wal_delta"))
        }
    }
}
