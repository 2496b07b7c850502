import QuiverJSON
public import QuiverModel

/// The catalogue's checks and changes for reshardings (see ``Resharding``).
extension ClusterMetadata {
    /// The replicas in state `from` of the shards a scale-down keeps, set to `to`.
    mutating func setReceivers(_ name: String, _ resharding: Resharding, from: ReplicaState, to: ReplicaState) {
        guard let layout = shards[name] else { return }
        shards[name] = layout.map { shard in
            guard shard.key == resharding.key, shard.id != resharding.shard else { return shard }
            var shard = shard
            for peer in shard.peers where shard.state(of: peer) == from { shard.setState(to, of: peer) }
            return shard
        }
    }

    /// Qdrant's checks of a new resharding, and the new shard's place.
    func checkResharding(_ resharding: Resharding, added: ShardInfo?, in name: String) throws(StorageError) {
        guard let config = collections[name], let layout = shards[name] else { throw .collectionNotFound(name) }
        if let current = routing[name]?.resharding {
            throw .badRequest("resharding \(current.direction.rawValue) of shard \(current.shard) is already in progress for collection \(name)")
        }
        guard routing[name]?.ring == .jump else {
            throw .badRequest("Collection \(name) was created by a version that routes points by modulo, whose shard count cannot change in place; recreate it (a snapshot recovered into a new collection keeps the routing it had)")
        }
        let custom = config.params.shardingMethod == .custom
        if custom && resharding.key == nil { throw .badRequest("must specify shard key on collection with custom sharding") }
        if !custom, let key = resharding.key { throw .badRequest("cannot specify shard key \(key) on collection with auto sharding") }
        let group = layout.filter { $0.key == resharding.key }.sorted { $0.id < $1.id }
        if let key = resharding.key, group.isEmpty { throw .badRequest("sharding key \(key) does not exist for collection \(name)") }
        switch resharding.direction {
        case .up:
            guard let added, added.id == resharding.shard, added.key == resharding.key, added.peers == [resharding.peer],
                  !layout.contains(where: { $0.id == added.id }), added.id > (layout.map(\.id).max() ?? 0) || layout.isEmpty else {
                throw .badRequest("the new shard \(resharding.shard) of collection \(name) is already taken; try again")
            }
        case .down:
            guard group.count > 1 else { throw .badRequest("cannot remove shard \(resharding.shard) by resharding down, it is the last shard") }
            guard group.last?.id == resharding.shard else { throw .badRequest("shard \(resharding.shard) is not the last shard of the group") }
        }
    }
}
