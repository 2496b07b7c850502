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
    public let routing: ShardRouting

    public init(_ shards: [ShardInfo], sharding: ShardingMethod?, routing: ShardRouting = .legacy) {
        self.shards = shards.sorted { $0.id < $1.id }
        keyed = sharding == .custom
        self.routing = routing
    }

    public func shard(_ id: UInt32) -> ShardInfo? { shards.first { $0.id == id } }

    /// The shards a request reaches, grouped by shard key (one group, without key, under automatic
    /// sharding). Without `selector` a read reaches every shard; a write to a custom-sharded
    /// collection must name its keys.
    ///
    /// During a resharding, a read reaches the resharded group's shards under the count reads use
    /// (``Resharding``); a write reaches all of them.
    public func scope(_ selector: ShardKeySelector?, write: Bool) throws(StorageError) -> [[ShardInfo]] {
        let groups = try fullScope(selector, write: write)
        guard !write, let resharding = routing.resharding else { return groups }
        return groups.map { group in
            guard isResharded(group, resharding) else { return group }
            let (old, new) = resharding.groups(group)
            return resharding.readsNew ? new : old
        }
    }

    private func isResharded(_ group: [ShardInfo], _ resharding: Resharding) -> Bool {
        group.first?.key == resharding.key && !group.isEmpty
    }

    /// During a resharding, what each shard reads reach in the resharded group answers for: the
    /// points it owns under the count reads use (it may also hold copies of points that moved to
    /// or from it).
    public func readRestrictions() -> [UInt32: Condition] {
        guard let resharding = routing.resharding else { return [:] }
        let (old, new) = resharding.groups(shards.filter { $0.key == resharding.key })
        let group = resharding.readsNew ? new : old
        var restrictions: [UInt32: Condition] = [:]
        for (index, shard) in group.enumerated() {
            restrictions[shard.id] = .owner(index: UInt32(index), count: UInt32(group.count), ring: routing.ring)
        }
        return restrictions
    }

    private func fullScope(_ selector: ShardKeySelector?, write: Bool) throws(StorageError) -> [[ShardInfo]] {
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

    /// Each shard's points under its group's count, resharding aside.
    public func ownership() -> [UInt32: Condition] {
        var conditions: [UInt32: Condition] = [:]
        for group in Dictionary(grouping: shards, by: \.key).values {
            for (index, shard) in group.sorted(by: { $0.id < $1.id }).enumerated() {
                conditions[shard.id] = .owner(index: UInt32(index), count: UInt32(group.count), ring: routing.ring)
            }
        }
        return conditions
    }

    /// Those of `ids` that shard `id` receives by a resharding still copying points (their shard
    /// under the old count is another): it may not have them yet, and an update of existing
    /// points leaves out those it lacks (the copy brings them with the update applied).
    public func arriving(_ ids: [PointID], in id: UInt32) -> Set<PointID> {
        guard let resharding = routing.resharding, resharding.stage == .migrating || resharding.stage == .readCommitted else { return [] }
        let (old, new) = resharding.groups(shards.filter { $0.key == resharding.key })
        guard new.contains(where: { $0.id == id }), !old.isEmpty else { return [] }
        return Set(ids.filter { old[PointRouting.shardIndex(of: $0, shardCount: old.count, ring: routing.ring)].id != id })
    }

    /// The shard of `id` within each group of a read's scope.
    public func targets(of id: PointID, in groups: [[ShardInfo]]) -> [ShardInfo] {
        groups.compactMap { group in group.isEmpty ? nil : group[PointRouting.shardIndex(of: id, shardCount: group.count, ring: routing.ring)] }
    }

    /// Each touched shard's part of an update (over a write's scope): all of it on every shard in
    /// scope when it applies by filter, else the points (or ids) that hash to the shard within
    /// each group; during a resharding, to the shards of both counts that writes go under.
    public func split(_ operation: UpdateOperation, byFilter: Bool, over groups: [[ShardInfo]]) -> [UInt32: UpdateOperation] {
        var perShard: [UInt32: UpdateOperation] = [:]
        if byFilter {
            for group in groups {
                var reached = group
                if let resharding = routing.resharding, isResharded(group, resharding) {
                    let (old, new) = resharding.groups(group)
                    reached = (resharding.writesOld ? old : []) + (resharding.writesNew ? new.filter { !old.contains($0) } : [])
                }
                for shard in reached { perShard[shard.id] = operation }
            }
            return perShard
        }
        let ring = routing.ring
        for group in groups where !group.isEmpty {
            guard let resharding = routing.resharding, isResharded(group, resharding) else {
                let split = operation.partitioned { PointRouting.shardIndex(of: $0, shardCount: group.count, ring: ring) }
                for (index, part) in split { perShard[group[index].id] = part }
                continue
            }
            let (old, new) = resharding.groups(group)
            var owners: [PointID: Set<UInt32>] = [:]
            for id in operation.ids where owners[id] == nil {
                var shards = Set<UInt32>()
                if resharding.writesOld { shards.insert(old[PointRouting.shardIndex(of: id, shardCount: old.count, ring: ring)].id) }
                if resharding.writesNew { shards.insert(new[PointRouting.shardIndex(of: id, shardCount: new.count, ring: ring)].id) }
                owners[id] = shards
            }
            for shard in Set(owners.values.joined()) { perShard[shard] = operation.restricted { owners[$0]?.contains(shard) == true } }
        }
        return perShard
    }
}
