import DiskIO
import QuiverJSON
public import QuiverModel
import Shard

/// Routing (DESIGN.md §4, §6): which shards a request reaches, the rate limits it is charged, the
/// replica sets as this peer sees them (states and locally disabled replicas), and each peer's
/// replicas reached here or over p2p. Writes are in Collection+Updates, reads in Collection+Reads.
extension Collection {
    // MARK: Scope

    /// The shard map as consensus gave it, asked which shards a request touches.
    var holder: ShardHolder { ShardHolder(layout, sharding: config.params.shardingMethod, routing: routing) }

    func scope(_ selector: ShardKeySelector?, write: Bool) throws(StorageError) -> [[ShardInfo]] {
        try holder.scope(selector, write: write)
    }

    nonisolated func isLocal(_ peer: UInt64) -> Bool { peer == peerID }

    // MARK: Rate limits

    /// Takes each shard's cost from its `kind` limiter when strict mode sets that limit, all or
    /// nothing: when one shard's limiter is short, nothing is taken and the request is refused.
    /// Calls from other peers (their parts of a request, forwarded writes) are not charged here.
    func charge(_ kind: RateLimiter.Kind, _ costs: [UInt32: Int], now: ContinuousClock.Instant = .now) throws(StorageError) {
        guard let limits = config.strictModeConfig?.enforced,
              let perMinute = kind == .read ? limits.readRateLimit : limits.writeRateLimit else { return }
        var limiters = rateLimiters[kind] ?? [:]
        for (shard, cost) in costs.sorted(by: { $0.key < $1.key }) {
            if limiters[shard]?.perMinute != perMinute { limiters[shard] = RateLimiter(kind, perMinute: perMinute, now: now) }
            if let refusal = limiters[shard]!.check(cost, now: now) {
                rateLimiters[kind] = limiters
                throw refusal
            }
        }
        for (shard, cost) in costs { limiters[shard]!.consume(cost, now: now) }
        rateLimiters[kind] = limiters
    }

    // MARK: Replica sets

    /// A replica this peer stopped sending updates to (Qdrant's locally disabled peer).
    struct DisabledReplica: Sendable {
        var from: ReplicaState?
        var reported: ContinuousClock.Instant
        /// Before the next report: 1 s, doubling up to 10 s.
        var delay: Duration
    }

    /// `shard`'s replica set as this peer sees it: the catalogue's states and the replicas disabled here.
    func replicaSet(_ shard: ShardInfo) -> ShardReplicaSet {
        var set = shard.replicaSet(thisPeer: peerID)
        for peer in (disabled[shard.id] ?? [:]).keys.sorted() { set.disableLocally(peer) }
        return set
    }

    /// Disables `peer`'s replica of `shard` here and reports it to consensus; false when the rules
    /// keep it (the last active replica).
    func disableReplica(_ shard: ShardInfo, _ peer: UInt64) -> Bool {
        var set = replicaSet(shard)
        guard disabled[shard.id]?[peer] == nil, set.disableLocally(peer) else { return false }
        let from = set.locallyDisabled[peer] ?? nil
        disabled[shard.id, default: [:]][peer] = DisabledReplica(from: from, reported: .now, delay: .seconds(1))
        report(shard.id, peer, from)
        return true
    }

    private func report(_ shard: UInt32, _ peer: UInt64, _ from: ReplicaState?) {
        let failures = failures, name = name
        Task { await failures.replicaFailed(collection: name, shard: shard, peer: peer, from: from) }
    }

    /// Reports again the disabled replicas consensus has not marked yet, each after its delay.
    func reportDisabledReplicasDue(now: ContinuousClock.Instant = .now) {
        for (shard, peers) in disabled {
            for (peer, entry) in peers where now - entry.reported >= entry.delay {
                disabled[shard]![peer]!.reported = now
                disabled[shard]![peer]!.delay = min(entry.delay * 2, .seconds(10))
                report(shard, peer, entry.from)
            }
        }
    }

    /// Waits (at most 30 s, and not past the request's `timeout`) until consensus has taken the
    /// disabled replicas out of the ones that count, so an acknowledged write is on every replica
    /// that still serves.
    func awaitDeactivation(_ replicas: [(shard: UInt32, peer: UInt64, error: StorageError)]) async throws(StorageError) {
        guard !replicas.isEmpty else { return }
        let started = ContinuousClock.now
        let deadline = min(started + Self.deactivationTimeout, RequestDeadline.current ?? started + Self.deactivationTimeout)
        while true {
            let pending = replicas.filter { replica in
                layout.first { $0.id == replica.shard }.map { $0.peers.contains(replica.peer) && $0.state(of: replica.peer).canBeSourceOfTruth } ?? false
            }
            guard let first = pending.first else { return }
            reportDisabledReplicasDue()
            guard ContinuousClock.now < deadline else {
                throw .serviceError("Some replica of shard \(first.shard) failed to apply operation and deactivation timed out after \(max((deadline - started).components.seconds, 0))s. Consistency of this update is not guaranteed. Please retry. Failed peer: \(first.peer), error: \(first.error)")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    static let deactivationTimeout: Duration = .seconds(30)

    /// One peer's part of an update, its error as a value. (Errors cross task-group closures as
    /// values from plain methods: typed `do throws` blocks inside those closures crashed release
    /// builds of Swift 6.3.)
    func send(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                      wait: Bool, to peer: UInt64) async -> Result<UpdateAck, StorageError> {
        do {
            return .success(try await replicas(on: peer).update(operations, clocks: clocks, filter: filter, condition: condition, wait: wait))
        } catch {
            return .failure(error)
        }
    }

    /// `peer`'s replicas of this collection's shards: the local shards here, else over p2p.
    func replicas(on peer: UInt64) -> any ShardReplica {
        if isLocal(peer) { return LocalReplicas(collection: self, peer: peerID) }
        return RemoteShard(network: network!, peer: peer, collection: name)
    }

    /// One peer's part of a read, its error as a value.
    func ask(_ peer: UInt64, _ shardIDs: [UInt32], _ request: ShardRequest) async -> Result<ShardResponse, StorageError> {
        do {
            return .success(try await replicas(on: peer).read(request, shards: shardIDs))
        } catch {
            return .failure(error)
        }
    }

    /// Applies operations to local shards (for this peer's part of an update, or another peer's
    /// call). Operations on existing points are checked in every shard before any shard writes.
    public func applyLocal(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition? = nil,
                           wait: Bool) async throws(StorageError) -> UInt64 {
        let ack = try await applyLocal(operations, clocks: [:], filter: filter, condition: condition, wait: wait)
        if let (_, error) = ack.failed.min(by: { $0.key < $1.key }) { throw error }
        return ack.operationID
    }

    /// The same, each shard's operation under its sender's clock tag when `clocks` has one: a
    /// replica that has seen a newer tick of that clock skips its operation and answers its tick
    /// in ``UpdateAck/rejected``. A shard that cannot take its operation fails alone, in
    /// ``UpdateAck/failed``, except that a point missing in one shard fails them all before any
    /// writes. Errors of the request itself (its filter) are thrown.
    public func applyLocal(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?,
                           condition: UpdateCondition? = nil, wait: Bool) async throws(StorageError) -> UpdateAck {
        let prepared = try prepare(filter)
        var preparedCondition = condition
        if let condition { preparedCondition!.filter = try prepare(condition.filter) }
        var ack = UpdateAck()
        // On a nearly full disk, or over a quota, only deletes of points are taken (they make room
        // once their segments are rewritten); asked once, so a request is refused whole.
        let addsData = operations.values.contains { if case .delete = $0 { false } else { true } }
        let refusal = addsData ? space?.admit() ?? quota?.refusal() : nil
        var targets: [(id: UInt32, shard: LocalShard, operation: UpdateOperation, wait: Bool, state: ReplicaState)] = []
        for id in operations.keys.sorted() {
            guard let shard = shards[id] else {
                // The sender's view is older (the replica moved away) or newer than this peer's.
                ack.failed[id] = .shardNotHere(id, collection: name, peer: peerID)
                ack.refused.insert(id)
                continue
            }
            let state = layout.first(where: { $0.id == id })?.state(of: peerID) ?? .active
            // A replica that takes no updates in its state (as this peer knows it) refuses them. A
            // sender that already sees it as a transfer's target ignores the refusal (the
            // transfer's source brings the update).
            guard state.accepts(forced: clocks[id]?.force ?? false) else {
                ack.failed[id] = .unavailable("Replica of shard \(id) on peer \(peerID) takes no updates in state \(state.rawValue)")
                ack.refused.insert(id)
                continue
            }
            if let refusal {
                ack.failed[id] = .insufficientStorage(refusal)
                continue
            }
            // A send this replica has seen a newer tick of is answered as such before the missing
            // points are looked for (the points may be gone since).
            if prepared == nil, clocks[id] != nil, operations[id]!.requiresExistingPoints {
                do {
                    try await shard.check(clocks[id])
                } catch {
                    record(error, shard: id, in: &ack)
                    continue
                }
            }
            // A Listener replica acknowledges once the write is in its log, whatever the caller asked.
            targets.append((id, shard, operations[id]!, state == .listener ? false : wait, state))
        }
        if prepared == nil {
            // A forced update (forwarded by a transfer's source) leaves out the points the target
            // does not have yet: their batch brings them with the update applied. A transfer's
            // target lacking a point fails alone: it is no sign the request is wrong.
            var incomplete: Set<UInt32> = []
            let holder = routing.resharding == nil ? nil : holder
            for (index, target) in targets.enumerated() where target.operation.requiresExistingPoints && clocks[target.id]?.force != true {
                var ids = target.operation.ids
                let arriving = holder?.arriving(ids, in: target.id) ?? []
                if !arriving.isEmpty {
                    let lacking = await target.shard.missing(Array(arriving))
                    targets[index].operation = target.operation.restricted { !lacking.contains($0) }
                    ids.removeAll(where: arriving.contains)
                }
                guard let missing = await target.shard.firstMissing(ids) else { continue }
                if target.state.isPartialOrRecovery {
                    ack.failed[target.id] = .notFound("No point with id \(missing) found")
                    incomplete.insert(target.id)
                    continue
                }
                for other in targets { ack.failed[other.id] = .notFound("No point with id \(missing) found") }
                return ack
            }
            targets.removeAll { incomplete.contains($0.id) }
        }
        for (id, shard, operation, wait, _) in targets {
            let clock = clocks[id]
            // A shard this peer is transferring: the update is applied and forwarded under the
            // relay's lock, in the order this replica applies it.
            let relay = outgoing[id]
            await relay?.lock.lock()
            let copied: [PointID]? = if let relay { await copiedPoints(operation, matching: prepared, shard: shard, via: relay) } else { nil }
            do {
                let applied = if let prepared {
                    try await shard.update(operation, matching: prepared, clock: clock, wait: wait)
                } else if let preparedCondition {
                    try await shard.update(operation, condition: preparedCondition, clock: clock, wait: wait)
                } else {
                    try await shard.update(operation, clock: clock, wait: wait)
                }
                ack.operationID = max(ack.operationID, applied)
                if let relay, relay.isForwarding {
                    await forward(operation, shard: id, clock: clock, filter: filter, condition: condition, via: relay, copied: copied)
                }
            } catch {
                record(error, shard: id, in: &ack)
            }
            relay?.lock.unlock()
        }
        return ack
    }

    /// Shard `id`'s failure in a replica's answer: a rejected clock with its tick, the rest as errors.
    private func record(_ error: ShardError, shard id: UInt32, in ack: inout UpdateAck) {
        switch error {
        case .clockRejected(let tick): ack.rejected[id] = tick
        case .pointNotFound(let point): ack.failed[id] = .notFound("No point with id \(point) found")
        case .closed where layout.first(where: { $0.id == id })?.peers.contains(peerID) != true:
            // Dropped here by a move that has just applied: the sender tries the shard's new replica.
            ack.failed[id] = .shardNotHere(id, collection: name, peer: peerID)
            ack.refused.insert(id)
        case .closed: ack.failed[id] = .unavailable("shard \(id) of collection `\(name)`: \(error)")
        case _ where error.isOutOfSpace:
            space?.measure()
            ack.failed[id] = .insufficientStorage("update of shard \(id) of collection `\(name)` failed: \(error)")
        default: ack.failed[id] = .serviceError("update of shard \(id) of collection `\(name)` failed: \(error)")
        }
    }

}
