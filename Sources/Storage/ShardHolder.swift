public import QuiverModel
import Shard

/// A collection's shard map (DESIGN.md §6): its shards, their shard keys and replicas, and the
/// decision of which shards a request touches — every shard for a read without a key, the shards of
/// the named keys, and within a group of shards the one a point id hashes to. A value: the
/// collection keeps the map consensus gave it and asks it; no IO here.
public struct ShardHolder: Sendable, Equatable {
    /// The shards in id order.
    public let shards: [ShardInfo]
    /// Custom sharding: shards belong to shard keys, and writes must name theirs.
    public let keyed: Bool

    public init(_ shards: [ShardInfo], sharding: ShardingMethod?) {
        self.shards = shards.sorted { $0.id < $1.id }
        keyed = sharding == .custom
    }

    public func shard(_ id: UInt32) -> ShardInfo? { shards.first { $0.id == id } }

    /// The shards a request reaches, grouped by shard key (one group, without key, under automatic
    /// sharding). Without `selector` a read reaches every shard; a write to a custom-sharded
    /// collection must name its keys.
    public func scope(_ selector: ShardKeySelector?, write: Bool) throws(StorageError) -> [[ShardInfo]] {
        guard let selector else {
            if keyed && write { throw .badInput("Shard key not specified") }
            return keyed ? Dictionary(grouping: shards, by: { $0.key }).values.map { $0 } : [shards]
        }
        func group(_ key: ShardKey) -> [ShardInfo]? {
            let matching = shards.filter { $0.key == key }
            return keyed && !matching.isEmpty ? matching : nil
        }
        switch selector {
        case .keys(let keys):
            var groups: [[ShardInfo]] = []
            for key in Array(Set(keys)).sorted() {
                guard let matching = group(key) else { throw .badInput("Shard key \(key) not found") }
                groups.append(matching)
            }
            return groups
        case .fallback(let target, let fallback):
            if let matching = group(target) ?? group(fallback) { return [matching] }
            throw .badInput("Shard key \(target) not found")
        }
    }

    /// The shard of `id` within each group.
    public static func targets(of id: PointID, in groups: [[ShardInfo]]) -> [ShardInfo] {
        groups.compactMap { group in group.isEmpty ? nil : group[PointRouting.shardIndex(of: id, shardCount: group.count)] }
    }

    /// Each touched shard's part of an update: all of it on every shard in scope when it applies
    /// by filter, else the points (or ids) that hash to the shard within each group.
    public static func split(_ operation: UpdateOperation, byFilter: Bool, over groups: [[ShardInfo]]) -> [UInt32: UpdateOperation] {
        var perShard: [UInt32: UpdateOperation] = [:]
        if byFilter {
            for shard in groups.joined() { perShard[shard.id] = operation }
            return perShard
        }
        for group in groups where !group.isEmpty {
            let split = operation.partitioned { PointRouting.shardIndex(of: $0, shardCount: group.count) }
            for (index, part) in split { perShard[group[index].id] = part }
        }
        return perShard
    }
}
