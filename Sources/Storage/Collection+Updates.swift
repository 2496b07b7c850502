import QuiverJSON
public import QuiverModel
import Shard

/// Writes (DESIGN.md §4, §6): a write split per shard, routed through the shard's leader for its
/// ordering, and replicated to the replicas that take updates under a clock tag.
extension Collection {
    // MARK: Updates

    /// Applies an update (by ids, or by filter on every shard in scope) to the replicas of the
    /// shards it touches, through each shard's leader for `ordering` (see ``route(_:filter:condition:wait:ordering:)``).
    /// The result's operation id is the largest among the shards.
    public func update(_ update: PointsUpdate, wait: Bool, ordering: WriteOrdering = .weak) async throws(StorageError) -> UpdateResult {
        // Routed under the catalogue applied now, until every replica (or shard leader) answered.
        let routed = routedWrites.begin()
        defer { routedWrites.end(routed) }
        let groups = try scope(update.shardKey, write: true)
        let operation = try prepare(update.operation)
        if let filter = update.filter { _ = try prepare(filter) }
        if let condition = update.condition { _ = try prepare(condition.filter) }
        let perShard = holder.split(operation, byFilter: update.filter != nil, over: groups)
        if config.strictModeConfig?.enforced?.writeRateLimit != nil {
            var costs: [UInt32: Int] = [:]
            for (id, part) in perShard {
                if let filter = update.filter, let shard = layout.first(where: { $0.id == id }),
                   case .count(let matching)? = try? await fanOut(.count(filter: filter), [[shard]], charged: false).first {
                    costs[id] = max(matching, 1)
                } else {
                    costs[id] = max(part.ids.count, 1)
                }
            }
            try charge(.write, costs)
        }
        let operationID = try await route(perShard, filter: update.filter, condition: update.condition, wait: wait, ordering: ordering)
        return UpdateResult(operationId: operationID, status: wait ? .completed : .acknowledged)
    }

    /// Sends each shard's part of an update to the shard's leader for `ordering`: with `weak` this
    /// peer replicates it at once; with `medium` and `strong` the leader (the highest replica that
    /// can be a source of truth, or the highest replica of all) replicates it under the shard's
    /// write lock, so every replica applies the writes to a shard in the leader's order. A leader
    /// that cannot be reached is disabled here (so `medium` turns to the next one) and the write
    /// fails with an error worth retrying.
    func route(_ perShard: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, wait: Bool,
               ordering: WriteOrdering) async throws(StorageError) -> UInt64 {
        guard ordering != .weak else {
            return try await replicate(perShard, filter: filter, condition: condition, wait: wait)
        }
        var byLeader: [UInt64: [UInt32: UpdateOperation]] = [:]
        for (id, operation) in perShard {
            guard let shard = layout.first(where: { $0.id == id }) else { continue }
            guard let leader = replicaSet(shard).leader(for: ordering) else {
                throw .serviceError("The replica set for shard \(id) on peer \(peerID) has no replica that can lead a write with \(ordering.rawValue) ordering")
            }
            byLeader[isLocal(leader) ? peerID : leader, default: [:]][id] = operation
        }
        let outcomes = await withTaskGroup(of: (UInt64, LeaderOutcome).self) { group in
            for (leader, operations) in byLeader {
                group.addTask { (leader, await self.lead(operations, filter: filter, condition: condition, wait: wait, ordering: ordering, via: leader)) }
            }
            var all: [(UInt64, LeaderOutcome)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        var operationID: UInt64 = 0
        var failure: StorageError?
        for (leader, outcome) in outcomes.sorted(by: { $0.0 < $1.0 }) {
            switch outcome {
            case .answered(.success(let id)): operationID = max(operationID, id)
            case .answered(.failure(let error)): failure = failure ?? error
            case .unreached(let error):
                for id in byLeader[leader]!.keys.sorted() {
                    if let shard = layout.first(where: { $0.id == id }) { _ = disableReplica(shard, leader) }
                }
                failure = failure ?? .serviceError("Failed to apply update with \(ordering.rawValue) ordering via leader peer \(leader): \(error)")
            }
        }
        if let failure { throw failure }
        return operationID
    }

    /// A leader's answer to its part of an ordered write, or why it was not reached (only then is
    /// the leader held to have failed).
    private enum LeaderOutcome {
        case answered(Result<UInt64, StorageError>)
        case unreached(StorageError)
    }

    /// One leader's part of an ordered write: here under the shards' write locks, or forwarded.
    private func lead(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, wait: Bool,
                      ordering: WriteOrdering, via leader: UInt64) async -> LeaderOutcome {
        if isLocal(leader) {
            do {
                return .answered(.success(try await coordinate(operations, filter: filter, condition: condition, wait: wait)))
            } catch {
                return .answered(.failure(error))
            }
        }
        do {
            return .answered(try await RemoteShard(network: network!, peer: leader, collection: name)
                .forward(operations, filter: filter, condition: condition, wait: wait, ordering: ordering))
        } catch {
            // A call that timed out or was refused before the leader answered.
            return error.isUnreachable ? .unreached(error) : .answered(.failure(error))
        }
    }

    /// An ordered write on its leader (this peer): the shards' write locks in id order, then the
    /// write to every replica.
    public func coordinate(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?,
                           wait: Bool) async throws(StorageError) -> UInt64 {
        let ids = operations.keys.sorted()
        var locks: [OrderingLock] = []
        for id in ids {
            let lock = orderingLocks[id] ?? OrderingLock()
            orderingLocks[id] = lock
            await lock.lock()
            locks.append(lock)
        }
        defer { for lock in locks { lock.unlock() } }
        return try await replicate(operations, filter: filter, condition: condition, wait: wait)
    }

    /// Applies each shard's operation to the shard's replicas that take updates: here directly, on
    /// other peers with one call each, all at once. Each shard's replies are judged by its replica
    /// set (`write_consistency_factor`, a source of truth among the replicas that applied it);
    /// replicas that failed are disabled here and reported to consensus as `Dead`, and with `wait`
    /// the answer waits (at most 30 s) until consensus has marked them.
    func replicate(_ perShard: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?,
                   wait: Bool) async throws(StorageError) -> UInt64 {
        reportDisabledReplicasDue()
        // A write forwarded here for shards this peer does not know yet (a new shard key) is not
        // acknowledged with nothing applied.
        if let unknown = perShard.keys.sorted().first(where: { id in !layout.contains { $0.id == id } }) {
            throw .unavailable("Shard \(unknown) of collection `\(name)` is not known on peer \(peerID) yet")
        }
        // Each shard's part goes under one of this peer's clocks for the shard, held for the whole write.
        var clockIDs: [UInt32: UInt32] = [:]
        defer { for (shard, clock) in clockIDs { clockSets[shard]?.release(clock) } }
        for id in perShard.keys.sorted() { clockIDs[id] = try await acquireClock(for: id) }
        var pending = perShard
        var operationID: UInt64 = 0
        var failure: StorageError?
        var deactivations: [(shard: UInt32, peer: UInt64, error: StorageError)] = []
        var rejections = 0, reroutes = 0
        while true {
            var tags: [UInt32: ClockTag] = [:]
            for (shard, clock) in clockIDs where pending[shard] != nil {
                tags[shard] = ClockTag(peerID: peerID, clockID: clock, tick: clockSets[shard]!.tick(clock), token: UInt64.random(in: 1...UInt64.max))
            }
            let routed = layout.filter { pending[$0.id] != nil }
            let round = try await replicateOnce(pending, tags: tags, filter: filter, condition: condition, wait: wait)
            operationID = max(operationID, round.operationID)
            deactivations += round.deactivations
            for (shard, tick) in round.retry { clockSets[shard]!.advance(clockIDs[shard]!, past: tick) }
            if let roundFailure = round.failure {
                // Refused by a replica this peer still counts on (it moved away, say): once this
                // peer has applied the change, the shards that failed go again (twice at most).
                if reroutes < 2, round.failed.isSubset(of: round.refused), await layoutChanges(round.failed, from: routed) {
                    reroutes += 1
                    pending = pending.filter { round.failed.contains($0.key) || round.retry[$0.key] != nil }
                    continue
                }
                failure = roundFailure
                break
            }
            pending = pending.filter { round.retry[$0.key] != nil }
            if pending.isEmpty { break }
            rejections += 1
            if rejections == Self.clockAttempts {
                failure = .serviceError("Failed to apply operation to shards \(pending.keys.sorted()) after \(Self.clockAttempts) attempts, all attempts were rejected")
                break
            }
        }
        if let failure { throw failure }
        if wait { try await awaitDeactivation(deactivations) }
        return operationID
    }

    /// Attempts at a write whose clock tag a replica rejected (Qdrant's `UPDATE_MAX_CLOCK_REJECTED_RETRIES`).
    static let clockAttempts = 3

    /// Waits (at most 2 s, not past the request's deadline) until this peer's layout of shards
    /// `ids` differs from `routed`.
    func layoutChanges(_ ids: Set<UInt32>, from routed: [ShardInfo]) async -> Bool {
        let deadline = min(ContinuousClock.now + .seconds(2), RequestDeadline.current ?? .now + .seconds(2))
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if layout.filter({ ids.contains($0.id) }) != routed.filter({ ids.contains($0.id) }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// A free clock of shard `shard` on this peer, waiting while all are taken (until the
    /// request's deadline, or its cancellation).
    private func acquireClock(for shard: UInt32) async throws(StorageError) -> UInt32 {
        while true {
            var set = clockSets[shard] ?? ClockSet()
            let clock = set.acquire()
            clockSets[shard] = set
            if let clock { return clock }
            if let deadline = RequestDeadline.current, deadline <= .now {
                throw .timeout("Failed to acquire a clock for an update of shard \(shard)")
            }
            do {
                try await Task.sleep(for: .milliseconds(1))
            } catch {
                throw .unavailable("the update was cancelled while waiting for a clock of shard \(shard)")
            }
        }
    }

    private struct ReplicationRound {
        var operationID: UInt64 = 0
        var failure: StorageError?
        var deactivations: [(shard: UInt32, peer: UInt64, error: StorageError)] = []
        /// Shards to send again, each after the newest tick a replica echoed.
        var retry: [UInt32: UInt64] = [:]
        /// Shards whose write failed, and shards a replica that can be a source of truth (as this
        /// peer sees it) refused: it takes no updates in its state, or does not hold the shard.
        var failed: Set<UInt32> = []
        var refused: Set<UInt32> = []
    }

    /// One attempt: every shard's part to the replicas that take updates, judged per shard.
    private func replicateOnce(_ perShard: [UInt32: UpdateOperation], tags: [UInt32: ClockTag], filter: Filter?,
                               condition: UpdateCondition?, wait: Bool) async throws(StorageError) -> ReplicationRound {
        let routing = routedWrites.begin()
        defer { routedWrites.end(routing) }
        var byPeer: [UInt64: [UInt32: UpdateOperation]] = [:]
        var touched: [(shard: ShardInfo, targets: [UInt64])] = []
        for shard in layout where perShard[shard.id] != nil {
            let targets = replicaSet(shard).updateTargets
            guard !targets.isEmpty else {
                throw .serviceError("The replica set for shard \(shard.id) on peer \(peerID) has no active replica")
            }
            touched.append((shard, targets))
            for peer in targets { byPeer[isLocal(peer) ? peerID : peer, default: [:]][shard.id] = perShard[shard.id] }
        }
        let outcomes = await withTaskGroup(of: (UInt64, Result<UpdateAck, StorageError>).self) { group in
            for (peer, operations) in byPeer {
                let clocks = tags.filter { operations[$0.key] != nil }
                group.addTask { (peer, await self.send(operations, clocks: clocks, filter: filter, condition: condition, wait: wait, to: peer)) }
            }
            var all: [UInt64: Result<UpdateAck, StorageError>] = [:]
            for await (peer, outcome) in group { all[peer] = outcome }
            return all
        }
        var round = ReplicationRound()
        let onlyExisting = condition?.mode == .updateOnly
        for (shard, targets) in touched {
            let results = targets.map { peer in (peer: peer, outcome: outcomes[isLocal(peer) ? peerID : peer]!) }
            for case .success(let ack) in results.map(\.outcome) where ack.failed[shard.id] == nil {
                round.operationID = max(round.operationID, ack.operationID)
            }
            let replies = results.map { result in
                if case .success(let ack) = result.outcome, let tick = ack.rejected[shard.id] {
                    return (peer: result.peer, reply: ShardReplicaSet.Reply.clockRejected(tick: tick))
                }
                if case .success(let ack) = result.outcome, ack.refused.contains(shard.id), let error = ack.failed[shard.id] {
                    return (peer: result.peer, reply: ShardReplicaSet.Reply.failed(error, transient: false, precondition: true))
                }
                return (peer: result.peer, reply: Self.reply(result.outcome.flatMap { $0.outcome(of: shard.id) }, wait: wait))
            }
            let decision = replicaSet(shard).judge(replies, writeConsistencyFactor: Int(config.params.writeConsistencyFactor),
                                                    updateOnlyExisting: onlyExisting)
            for case (let peer, .failed(_, _, _, precondition: true)) in replies where shard.state(of: peer).canBeSourceOfTruth {
                round.refused.insert(shard.id)
            }
            for peer in decision.disable where disableReplica(shard, peer) && decision.waitForDeactivation {
                guard case .failed(let error, _, _, _) = replies.first(where: { $0.peer == peer })?.reply else { continue }
                round.deactivations.append((shard.id, peer, error))
            }
            // A replica disabled here by an earlier write, that consensus has not marked yet (its
            // report is pending, or was refused while it was the last active one), was not sent
            // this write: the answer waits for it as for a replica that failed this write.
            for peer in (disabled[shard.id] ?? [:]).keys.sorted()
            where !targets.contains(peer) && shard.peers.contains(peer) && shard.state(of: peer).canBeSourceOfTruth
                && !round.deactivations.contains(where: { $0.shard == shard.id && $0.peer == peer }) {
                round.deactivations.append((shard.id, peer, .unavailable("replica \(peer) of shard \(shard.id) was disabled on peer \(peerID) after a failed update")))
            }
            switch decision.outcome {
            case .success: break
            case .retry(let tick): round.retry[shard.id] = tick
            case .failed(let error):
                round.failed.insert(shard.id)
                // A missing point is the caller's problem and says most; report it first.
                if case .notFound = error { round.failure = error } else if round.failure == nil {
                    let applied = replies.count { if case .applied = $0.reply { true } else { false } }
                    let required = min(Int(config.params.writeConsistencyFactor), shard.peers.count)
                    var alone = false  // a full disk with no replica applied: its own message says it
                    if case .insufficientStorage = error, applied == 0 { alone = true }
                    round.failure = replies.contains(where: \.reply.isTransient) && !alone ? error.prefixed(
                        "Only \(applied) of the \(replies.count) replicas of shard \(shard.id) applied the update, and write_consistency_factor asks for \(required); it is not acknowledged. "
                    ) : error
                }
            case .noSourceOfTruth(let error):
                round.failed.insert(shard.id)
                if round.failure == nil {
                    round.failure = .serviceError("Failed to apply operation to at least one `Active` replica. Consistency of this update is not guaranteed. Please retry. \(error)")
                }
            }
        }
        return round
    }

    /// A peer's answer to its part of an update, as one replica's reply.
    static func reply(_ outcome: Result<UInt64, StorageError>, wait: Bool) -> ShardReplicaSet.Reply {
        switch outcome {
        case .success: return .applied(completed: wait)
        case .failure(let error):
            switch error {
            case .notFound: return .failed(error, transient: false, missingPoint: true)
            case .badInput, .badRequest, .alreadyExists, .standaloneMode, .rateLimited, .forbidden: return .failed(error, transient: false)
            case .unavailable, .serviceError, .timeout, .insufficientStorage: return .failed(error, transient: true)
            }
        }
    }

}
