import QuiverJSON
public import QuiverModel
import Shard

/// Routing (DESIGN.md §4): which shards a request reaches, which peer answers for each shard, and
/// the fan-out that asks every peer involved once, running the local part here.
extension Collection {
    // MARK: Scope

    /// The shard map as consensus gave it, asked which shards a request touches.
    var holder: ShardHolder { ShardHolder(layout, sharding: config.params.shardingMethod) }

    func scope(_ selector: ShardKeySelector?, write: Bool) throws(StorageError) -> [[ShardInfo]] {
        try holder.scope(selector, write: write)
    }

    nonisolated func isLocal(_ peer: UInt64) -> Bool { network == nil || peer == peerID }

    // MARK: Updates

    /// Applies an update (by ids, or by filter on every shard in scope) to the replicas of the
    /// shards it touches, through each shard's leader for `ordering` (see ``route(_:filter:condition:wait:ordering:)``).
    /// The result's operation id is the largest among the shards.
    public func update(_ update: PointsUpdate, wait: Bool, ordering: WriteOrdering = .weak) async throws(StorageError) -> UpdateResult {
        let groups = try scope(update.shardKey, write: true)
        let operation = try prepare(update.operation)
        if let filter = update.filter { _ = try prepare(filter) }
        if let condition = update.condition { _ = try prepare(condition.filter) }
        let perShard = ShardHolder.split(operation, byFilter: update.filter != nil, over: groups)
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
        guard ordering != .weak, network != nil else {
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
        let outcomes = await withTaskGroup(of: (UInt64, Result<UInt64, StorageError>).self) { group in
            for (leader, operations) in byLeader {
                group.addTask { (leader, await self.lead(operations, filter: filter, condition: condition, wait: wait, ordering: ordering, via: leader)) }
            }
            var all: [(UInt64, Result<UInt64, StorageError>)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        var operationID: UInt64 = 0
        var failure: StorageError?
        for (leader, outcome) in outcomes.sorted(by: { $0.0 < $1.0 }) {
            switch outcome {
            case .success(let id): operationID = max(operationID, id)
            case .failure(let error) where !isLocal(leader) && error.isUnreachable:
                for id in byLeader[leader]!.keys.sorted() {
                    if let shard = layout.first(where: { $0.id == id }) { _ = disableReplica(shard, leader) }
                }
                failure = failure ?? .serviceError("Failed to apply update with \(ordering.rawValue) ordering via leader peer \(leader): \(error)")
            case .failure(let error):
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return operationID
    }

    /// One leader's part of an ordered write: here under the shards' write locks, or forwarded.
    private func lead(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, wait: Bool,
                      ordering: WriteOrdering, via leader: UInt64) async -> Result<UInt64, StorageError> {
        do {
            if isLocal(leader) { return .success(try await coordinate(operations, filter: filter, condition: condition, wait: wait)) }
            return .success(try await RemoteShard(network: network!, peer: leader, collection: name)
                .forward(operations, filter: filter, condition: condition, wait: wait, ordering: ordering))
        } catch {
            return .failure(error)
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
        // In a cluster each shard's part goes under one of this peer's clocks for the shard, held
        // for the whole write.
        var clockIDs: [UInt32: UInt32] = [:]
        defer { for (shard, clock) in clockIDs { clockSets[shard]?.release(clock) } }
        if network != nil {
            for id in perShard.keys.sorted() { clockIDs[id] = try await acquireClock(for: id) }
        }
        var pending = perShard
        var operationID: UInt64 = 0
        var failure: StorageError?
        var deactivations: [(shard: UInt32, peer: UInt64, error: StorageError)] = []
        for attempt in 1...Self.clockAttempts {
            var tags: [UInt32: ClockTag] = [:]
            for (shard, clock) in clockIDs where pending[shard] != nil {
                tags[shard] = ClockTag(peerID: peerID, clockID: clock, tick: clockSets[shard]!.tick(clock), token: UInt64.random(in: 1...UInt64.max))
            }
            let round = try await replicateOnce(pending, tags: tags, filter: filter, condition: condition, wait: wait)
            operationID = max(operationID, round.operationID)
            deactivations += round.deactivations
            failure = failure ?? round.failure
            for (shard, tick) in round.retry { clockSets[shard]!.advance(clockIDs[shard]!, past: tick) }
            pending = pending.filter { round.retry[$0.key] != nil }
            if pending.isEmpty || failure != nil { break }
            if attempt == Self.clockAttempts {
                failure = .serviceError("Failed to apply operation to shards \(pending.keys.sorted()) after \(Self.clockAttempts) attempts, all attempts were rejected")
            }
        }
        if let failure { throw failure }
        if wait { try await awaitDeactivation(deactivations) }
        return operationID
    }

    /// Attempts at a write whose clock tag a replica rejected (Qdrant's `UPDATE_MAX_CLOCK_REJECTED_RETRIES`).
    static let clockAttempts = 3

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
    }

    /// One attempt: every shard's part to the replicas that take updates, judged per shard.
    private func replicateOnce(_ perShard: [UInt32: UpdateOperation], tags: [UInt32: ClockTag], filter: Filter?,
                               condition: UpdateCondition?, wait: Bool) async throws(StorageError) -> ReplicationRound {
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
            for case .success(let ack) in results.map(\.outcome) { round.operationID = max(round.operationID, ack.operationID) }
            let replies = results.map { result in
                if case .success(let ack) = result.outcome, let tick = ack.rejected[shard.id] {
                    return (peer: result.peer, reply: ShardReplicaSet.Reply.clockRejected(tick: tick))
                }
                return (peer: result.peer, reply: Self.reply(result.outcome.map(\.operationID), wait: wait))
            }
            let decision = replicaSet(shard).judge(replies, writeConsistencyFactor: Int(config.params.writeConsistencyFactor),
                                                    updateOnlyExisting: onlyExisting)
            for peer in decision.disable where disableReplica(shard, peer) && decision.waitForDeactivation {
                guard case .failed(let error, _, _, _) = replies.first(where: { $0.peer == peer })?.reply else { continue }
                round.deactivations.append((shard.id, peer, error))
            }
            switch decision.outcome {
            case .success: break
            case .retry(let tick): round.retry[shard.id] = tick
            case .failed(let error):
                // A missing point is the caller's problem and says most; report it first.
                if case .notFound = error { round.failure = error } else if round.failure == nil {
                    let applied = replies.count { if case .applied = $0.reply { true } else { false } }
                    let required = min(Int(config.params.writeConsistencyFactor), shard.peers.count)
                    round.failure = replies.contains(where: \.reply.isTransient) ? error.prefixed(
                        "Only \(applied) of the \(replies.count) replicas of shard \(shard.id) applied the update, and write_consistency_factor asks for \(required); it is not acknowledged. "
                    ) : error
                }
            case .noSourceOfTruth(let error):
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
            case .badInput, .badRequest, .alreadyExists, .standaloneMode, .rateLimited: return .failed(error, transient: false)
            case .unavailable, .serviceError, .timeout: return .failed(error, transient: true)
            }
        }
    }

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
    private func send(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                      wait: Bool, to peer: UInt64) async -> Result<UpdateAck, StorageError> {
        do {
            return .success(try await replicas(on: peer).update(operations, clocks: clocks, filter: filter, condition: condition, wait: wait))
        } catch {
            return .failure(error)
        }
    }

    /// `peer`'s replicas of this collection's shards: the local shards here, else over p2p.
    private func replicas(on peer: UInt64) -> any ShardReplica {
        if isLocal(peer) { return LocalReplicas(collection: self, peer: peerID) }
        return RemoteShard(network: network!, peer: peer, collection: name)
    }

    /// One peer's part of a read, its error as a value.
    private func ask(_ peer: UInt64, _ shardIDs: [UInt32], _ request: ShardRequest) async -> Result<ShardResponse, StorageError> {
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
        try await applyLocal(operations, clocks: [:], filter: filter, condition: condition, wait: wait).operationID
    }

    /// The same, each shard's operation under its sender's clock tag when `clocks` has one: a
    /// replica that has seen a newer tick of that clock skips its operation and answers its tick
    /// in ``UpdateAck/rejected``.
    public func applyLocal(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?,
                           condition: UpdateCondition? = nil, wait: Bool) async throws(StorageError) -> UpdateAck {
        var targets: [(UInt32, LocalShard, UpdateOperation, wait: Bool)] = []
        for id in operations.keys.sorted() {
            guard let shard = shards[id] else { throw .notFound("Shard \(id) of collection `\(name)` is not on peer \(peerID)") }
            var state = ReplicaState.active
            if network != nil, let info = layout.first(where: { $0.id == id }) { state = info.state(of: peerID) }
            // A replica that takes no updates in its state (as this peer knows it) refuses them.
            guard state.accepts(forced: clocks[id]?.force ?? false) else { throw .serviceError("No target shard \(id) found for update") }
            // A Listener replica acknowledges once the write is in its log, whatever the caller asked.
            targets.append((id, shard, operations[id]!, state == .listener ? false : wait))
        }
        let prepared = try prepare(filter)
        var preparedCondition = condition
        if let condition { preparedCondition!.filter = try prepare(condition.filter) }
        if prepared == nil {
            for (_, shard, operation, _) in targets where operation.requiresExistingPoints {
                if let missing = await shard.firstMissing(operation.ids) { throw .notFound("No point with id \(missing) found") }
            }
        }
        var ack = UpdateAck()
        for (id, shard, operation, wait) in targets {
            let clock = clocks[id]
            do {
                let applied = if let prepared {
                    try await shard.update(operation, matching: prepared, clock: clock, wait: wait)
                } else if let preparedCondition {
                    try await shard.update(operation, condition: preparedCondition, clock: clock, wait: wait)
                } else {
                    try await shard.update(operation, clock: clock, wait: wait)
                }
                ack.operationID = max(ack.operationID, applied)
            } catch {
                if case .clockRejected(let tick) = error {
                    ack.rejected[id] = tick
                    continue
                }
                if case .pointNotFound(let point) = error { throw .notFound("No point with id \(point) found") }
                throw .serviceError("update of shard \(id) of collection `\(name)` failed: \(error)")
            }
        }
        return ack
    }

    // MARK: Fan-out

    /// Runs `request` on every shard in `groups`: each shard is read from one replica, local when
    /// this peer holds one, and each other peer involved gets one call for all its shards. A peer
    /// that has not answered within the network's `slowAfter` has its shards asked of other replicas
    /// as well (the first complete answer counts); a peer that fails has them asked again elsewhere.
    func fanOut(_ request: ShardRequest, _ groups: [[ShardInfo]], consistency: ReadConsistency = .default,
                charged: Bool = true) async throws(StorageError) -> [ShardResponse] {
        var pending = Dictionary(grouping: groups.joined(), by: \.id).values.map { $0[0] }.sorted { $0.id < $1.id }
        let cost = RateCost.read(request)
        if charged && cost > 0 { try charge(.read, Dictionary(uniqueKeysWithValues: pending.map { ($0.id, cost) })) }
        if consistency != .default { return try await fanOutConsistent(request, pending, consistency) }
        // The replicas that serve reads, per shard, as this peer sees them now.
        var readable: [UInt32: Set<UInt64>] = [:]
        for shard in pending {
            let set = replicaSet(shard)
            readable[shard.id] = Set(shard.peers.filter(set.isReadable))
        }
        var failed: Set<UInt64> = []
        var responses: [ShardResponse] = []
        while !pending.isEmpty {
            let plan = try assign(pending, readable: readable, excluding: failed)
            let round = await run(plan, request, readable: readable, failed: failed)
            if let error = round.error { throw error }
            responses += round.responses
            failed.formUnion(round.failed)
            pending = layout.filter { round.retry.contains($0.id) }
            let lost = pending.filter { readable[$0.id, default: []].isSubset(of: failed) }.map(\.id)
            if !lost.isEmpty { throw .unavailable("no replica of shards \(lost) of collection `\(name)` answered: \(round.lastFailure)") }
        }
        return responses
    }

    private struct ReadRound {
        var responses: [ShardResponse] = []
        var failed: Set<UInt64> = []
        /// Shards none of whose asked replicas answered.
        var retry: Set<UInt32> = []
        var lastFailure = ""
        /// An error that ends the read (the request's own fault, or its timeout).
        var error: StorageError?
    }

    private enum ReadEvent: Sendable {
        case answer(call: Int, hedge: UInt64?, Result<ShardResponse, StorageError>)
        case slow
    }

    /// One round of a read: the calls of `plan` at once, and after `slowAfter` a second call (a
    /// hedge) for the shards of each remote call still unanswered, to other replicas.
    private func run(_ plan: [UInt64: [UInt32]], _ request: ShardRequest, readable: [UInt32: Set<UInt64>],
                     failed: Set<UInt64>) async -> ReadRound {
        struct Call {
            let peer: UInt64
            let shards: [UInt32]
            var done = false
            var failed = false
            var hedges: [UInt64: [UInt32]] = [:]
            var hedgeAnswers: [ShardResponse] = []
            var hedgeFailed = false
        }
        var calls = plan.sorted { $0.key < $1.key }.map { Call(peer: $0.key, shards: $0.value) }
        var round = ReadRound()
        // The collection's `read_fan_out_delay_ms` when set, else the network's call timeout.
        let slowAfter = config.params.readFanOutDelayMs.map { Duration.milliseconds(Int64($0)) } ?? network?.slowAfter ?? .seconds(1)
        await withTaskGroup(of: ReadEvent.self) { group in
            for (index, call) in calls.enumerated() {
                group.addTask { .answer(call: index, hedge: nil, await self.ask(call.peer, call.shards, request)) }
            }
            if calls.contains(where: { !isLocal($0.peer) }) {
                group.addTask {
                    try? await Task.sleep(for: slowAfter)
                    return .slow
                }
            }
            var open = calls.count
            while open > 0, let event = await group.next() {
                switch event {
                case .slow:
                    for index in calls.indices where !calls[index].done && !calls[index].failed && !isLocal(calls[index].peer) {
                        let shards = layout.filter { calls[index].shards.contains($0.id) }
                        let excluded = failed.union(round.failed).union([calls[index].peer])
                        guard let hedges = try? assign(shards, readable: readable, excluding: excluded) else { continue }
                        network?.noteSlow(calls[index].peer)
                        calls[index].hedges = hedges
                        for (peer, shardIDs) in hedges {
                            group.addTask { .answer(call: index, hedge: peer, await self.ask(peer, shardIDs, request)) }
                        }
                    }
                case .answer(let index, let hedge, let outcome):
                    guard !calls[index].done else { continue }
                    switch outcome {
                    case .success(let response) where hedge == nil:
                        round.responses.append(response)
                        calls[index].done = true
                    case .success(let response):
                        guard !calls[index].hedgeFailed else { continue }
                        calls[index].hedgeAnswers.append(response)
                        if calls[index].hedgeAnswers.count == calls[index].hedges.count {
                            round.responses += calls[index].hedgeAnswers
                            calls[index].done = true
                        }
                    case .failure(let error) where hedge != nil:
                        // A hedge that fails leaves the first call to answer, if it still can.
                        if let message = error.replicaFailure {
                            round.failed.insert(hedge!)
                            round.lastFailure = message
                        }
                        calls[index].hedgeFailed = true
                        if calls[index].failed {
                            round.retry.formUnion(calls[index].shards)
                            calls[index].done = true
                        }
                    case .failure(let error):
                        let peer = calls[index].peer
                        if case .timeout = error {
                            // As Qdrant reports a read whose replica timed out.
                            round.error = .serviceError("1 of 1 read operations failed:\n  \(error)")
                            open = 0
                            continue
                        }
                        // Another replica is asked when this one is unreachable or failed on its side.
                        guard !isLocal(peer), let message = error.replicaFailure else {
                            round.error = error
                            open = 0
                            continue
                        }
                        round.failed.insert(peer)
                        round.lastFailure = message
                        calls[index].failed = true
                        // Over when no hedge is still running for it.
                        if calls[index].hedges.isEmpty || calls[index].hedgeFailed {
                            round.retry.formUnion(calls[index].shards)
                            calls[index].done = true
                        }
                    }
                    if calls[index].done { open -= 1 }
                }
            }
            group.cancelAll()
        }
        return round
    }

    /// Peer → shards it answers for: local replicas first, then the peer covering most of the
    /// remaining shards (ties by peer id), so a request costs as few calls as possible. Peers that
    /// failed or were slow lately are asked only for shards no other replica can answer.
    private func assign(_ shards: [ShardInfo], readable: [UInt32: Set<UInt64>],
                        excluding failed: Set<UInt64>) throws(StorageError) -> [UInt64: [UInt32]] {
        var plan: [UInt64: [UInt32]] = [:]
        var remaining: [ShardInfo] = []
        for shard in shards {
            if readable[shard.id, default: []].subtracting(failed).contains(where: isLocal) {
                plan[peerID, default: []].append(shard.id)
            } else {
                remaining.append(shard)
            }
        }
        func candidates(_ shard: ShardInfo) -> Set<UInt64> {
            let all = readable[shard.id, default: []].subtracting(failed)
            let responsive = all.filter { network?.isResponsive($0) ?? true }
            return responsive.isEmpty ? all : responsive
        }
        while !remaining.isEmpty {
            var cover: [UInt64: Int] = [:]
            for shard in remaining {
                for peer in candidates(shard) { cover[peer, default: 0] += 1 }
            }
            guard let best = cover.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else {
                throw .unavailable("no replica of shard \(remaining[0].id) of collection `\(name)` is reachable")
            }
            let covered = Set(remaining.filter { candidates($0).contains(best) }.map(\.id))
            plan[best, default: []] += remaining.filter { covered.contains($0.id) }.map(\.id)
            remaining.removeAll { covered.contains($0.id) }
        }
        return plan
    }

    /// A read with a `consistency` other than the default: each shard is read from as many of its
    /// readable replicas as the consistency requires (this peer's first, then the others from the
    /// shard's position on), one call per replica, trying another replica when one fails
    /// transiently; the replicas' answers are combined as Qdrant combines them (an item stays when
    /// enough replicas returned it equal; counts take the minimum or the median).
    func fanOutConsistent(_ request: ShardRequest, _ shards: [ShardInfo],
                          _ consistency: ReadConsistency) async throws(StorageError) -> [ShardResponse] {
        var resolved: [ShardResponse] = []
        for shard in shards.sorted(by: { $0.id < $1.id }) {
            let set = replicaSet(shard)
            let others = set.peers.filter { $0 != peerID }
            var rotation: [UInt64] = others
            if !others.isEmpty {
                let start = Int(shard.id) % others.count
                rotation = Array(others[start...]) + Array(others[..<start])
            }
            let plan = try set.readPlan(consistency, order: rotation)
            var answers: [ShardResponse] = []
            var errors: [String] = []
            var next = 0
            while answers.count < plan.required {
                let wanted = plan.required - answers.count
                guard plan.candidates.count - next >= wanted else {
                    throw .serviceError("\(errors.count) of \(plan.candidates.count) read operations failed:\n" + errors.joined(separator: "\n"))
                }
                let batch = Array(plan.candidates[next..<(next + wanted)])
                next += wanted
                let outcomes = await withTaskGroup(of: Result<ShardResponse, StorageError>.self) { group in
                    for peer in batch { group.addTask { await self.ask(peer, [shard.id], request) } }
                    var all: [Result<ShardResponse, StorageError>] = []
                    for await outcome in group { all.append(outcome) }
                    return all
                }
                for outcome in outcomes {
                    switch outcome {
                    case .success(let response): answers.append(response)
                    case .failure(let error):
                        guard let message = error.replicaFailure else { throw error }
                        errors.append(message)
                    }
                }
            }
            resolved.append(Self.resolve(answers, plan.resolution))
        }
        return resolved
    }

    /// Several replicas' answers to one shard's read, combined by `resolution`.
    static func resolve(_ answers: [ShardResponse], _ resolution: ReadResolution) -> ShardResponse {
        guard answers.count > 1, let first = answers.first else { return answers.first ?? .records([]) }
        func keyed<Item: Encodable>(_ lists: [[Item]]) -> [Item] {
            // Items are equal when their wire forms are: id, score, version, payload and vectors alike.
            let keys = lists.map { list in list.map { (try? JSONValueEncoder().encodeBytes($0)) ?? [] } }
            var byKey: [[UInt8]: Item] = [:]
            for (list, listKeys) in zip(lists, keys) { for (item, key) in zip(list, listKeys) where byKey[key] == nil { byKey[key] = item } }
            return resolution.resolve(keys).map { byKey[$0]! }
        }
        switch first {
        case .records:
            return .records(keyed(answers.map { if case .records(let r) = $0 { r } else { [] } }))
        case .points:
            return .points(keyed(answers.map { if case .points(let p) = $0 { p } else { [] } }))
        case .count:
            return .count(resolution.resolve(counts: answers.map { if case .count(let n) = $0 { n } else { 0 } }))
        case .facets:
            let lists: [[FacetCount]] = answers.map { if case .facets(let f) = $0 { f } else { [] } }
            let values: [JSONValue] = resolution.resolve(lists.map { list in list.map(\.value) })
            return .facets(values.map { value in
                let counts: [Int] = lists.compactMap { list in list.first { $0.value == value }?.count }
                return FacetCount(value: value, count: resolution.resolve(counts: counts))
            })
        case .vector:
            return first
        }
    }

    // MARK: Local reads

    /// Runs `request` on local shards `ids` (for this peer's part of a fan-out, another peer's call,
    /// or the local shard API), merging their answers as the whole collection would.
    public func runLocal(_ request: ShardRequest, shards ids: [UInt32]) async throws(StorageError) -> ShardResponse {
        var targets: [LocalShard] = []
        for id in ids.sorted() {
            guard let shard = shards[id] else { throw .notFound("Shard \(id) of collection `\(name)` is not on peer \(peerID)") }
            targets.append(shard)
        }
        switch request {
        case .retrieve(let pointIDs, let withPayload, let withVector):
            var records: [PointRecord] = []
            for shard in targets { records += await shard.retrieve(pointIDs, withPayload: withPayload, withVector: withVector) }
            return .records(records)
        case .scroll(let offset, let limit, let filter, let withPayload, let withVector):
            let filter = try prepare(filter)
            var pages: [[PointRecord]] = []
            for shard in targets {
                pages.append(await shard.scroll(from: offset, limit: limit, filter: filter, withPayload: withPayload, withVector: withVector))
            }
            return .records(Self.mergeByID(pages, limit: limit))
        case .scrollOrdered(let orderBy, let limit, let filter, let withPayload, let withVector):
            let filter = try prepare(filter)
            var pages: [[PointRecord]] = []
            for shard in targets {
                pages.append(await shard.scroll(orderedBy: orderBy, filter: filter, limit: limit, withPayload: withPayload, withVector: withVector))
            }
            return .records(Self.mergeByValue(pages, orderBy: orderBy, limit: limit))
        case .count(let filter):
            let filter = try prepare(filter)
            var total = 0
            for shard in targets { total += await shard.count(filter: filter) }
            return .count(total)
        case .search(let search):
            return .points(try await searchLocal(search, targets))
        case .facet(let key, let filter):
            let filter = try prepare(filter)
            guard let type = payloadSchema[key]?.type else { return .facets([]) }
            var counts: [JSONValue: Int] = [:]
            for shard in targets {
                for (value, count) in await shard.facetCounts(key, type: type, filter: filter) { counts[value, default: 0] += count }
            }
            return .facets(counts.map { FacetCount(value: $0.key, count: $0.value) })
        case .vector(let id, let name):
            for shard in targets {
                if let vector = await shard.vector(of: id, name: name) { return .vector(vector) }
            }
            return .vector(nil)
        }
    }

    // MARK: Merging

    /// Pages in id order merged into one, cut to `limit` (a point under several shard keys once).
    static func mergeByID(_ pages: [[PointRecord]], limit: Int) -> [PointRecord] {
        var seen = Set<PointID>()
        return Array(pages.joined().sorted { $0.id < $1.id }.filter { seen.insert($0.id).inserted }.prefix(limit))
    }

    static func mergeByValue(_ pages: [[PointRecord]], orderBy: OrderBy, limit: Int) -> [PointRecord] {
        let sorted = pages.joined().sorted { a, b in
            let x = a.orderValue?.doubleValue ?? 0, y = b.orderValue?.doubleValue ?? 0
            return x != y ? (orderBy.descending ? x > y : x < y) : a.id < b.id
        }
        return Array(sorted.prefix(limit))
    }

    static func mergeByScore(_ lists: [[ScoredPoint]], higherIsBetter: Bool, limit: Int) -> [ScoredPoint] {
        let sorted = lists.joined().sorted { a, b in
            a.score != b.score ? (higherIsBetter ? a.score > b.score : a.score < b.score) : a.id < b.id
        }
        var seen = Set<PointID>()
        return Array(sorted.filter { seen.insert($0.id).inserted }.prefix(limit))
    }

    static func records(_ responses: [ShardResponse]) -> [[PointRecord]] {
        responses.map { if case .records(let records) = $0 { records } else { [] } }
    }

    // MARK: Reads

    public func retrieve(_ ids: [PointID], withPayload: WithPayload, withVector: WithVector, shardKey: ShardKeySelector? = nil,
                         consistency: ReadConsistency = .default) async throws(StorageError) -> [PointRecord] {
        let groups = try scope(shardKey, write: false)
        let touched = Set(ids.flatMap { ShardHolder.targets(of: $0, in: groups).map(\.id) })
        let responses = try await fanOut(.retrieve(ids: ids, withPayload: withPayload, withVector: withVector),
                                         [layout.filter { touched.contains($0.id) }], consistency: consistency)
        return Self.inRequestOrder(ids, Self.records(responses).joined())
    }

    /// Records in the order of `ids`, each id once (the first record found for it).
    public static func inRequestOrder(_ ids: [PointID], _ records: some Sequence<PointRecord>) -> [PointRecord] {
        var found: [PointID: PointRecord] = [:]
        for record in records where found[record.id] == nil { found[record.id] = record }
        var seen = Set<PointID>()
        return ids.compactMap { id in seen.insert(id).inserted ? found[id] : nil }
    }

    /// The first `limit` of up to `limit + 1` records in id order, and the id that starts the next page.
    public static func page(_ records: [PointRecord], limit: Int) -> ([PointRecord], PointID?) {
        (Array(records.prefix(limit)), records.count > limit ? records[limit].id : nil)
    }

    /// A page of points in id order from `offset`, and the id that starts the next page.
    public func scroll(from offset: PointID?, limit: Int, filter: Filter? = nil, withPayload: WithPayload, withVector: WithVector,
                       shardKey: ShardKeySelector? = nil, consistency: ReadConsistency = .default) async throws(StorageError) -> ([PointRecord], PointID?) {
        let groups = try scope(shardKey, write: false)
        _ = try prepare(filter)
        let responses = try await fanOut(.scroll(offset: offset, limit: limit + 1, filter: filter, withPayload: withPayload,
                                                 withVector: withVector), groups, consistency: consistency)
        return Self.page(Self.mergeByID(Self.records(responses), limit: limit + 1), limit: limit)
    }

    public func count(filter: Filter? = nil, shardKey: ShardKeySelector? = nil,
                      consistency: ReadConsistency = .default) async throws(StorageError) -> Int {
        let groups = try scope(shardKey, write: false)
        _ = try prepare(filter)
        return try await fanOut(.count(filter: filter), groups, consistency: consistency).reduce(0) { total, response in
            if case .count(let n) = response { total + n } else { total }
        }
    }

    /// The collection's stored sizes, estimated as Qdrant does: this peer's shards, scaled to the
    /// number of shards in the collection (exact on a single node). Payload bytes only when asked.
    public func storedSizes(payloads: Bool) async -> StoredSizes {
        var total = StoredSizes()
        for shard in shards.values {
            let sizes = await shard.storedSizes(payloads: payloads)
            total.points += sizes.points
            total.vectorBytes += sizes.vectorBytes
            total.payloadBytes += sizes.payloadBytes
        }
        guard !shards.isEmpty, layout.count > shards.count else { return total }
        let scale = Double(layout.count) / Double(shards.count)
        total.points = Int(Double(total.points) * scale)
        total.vectorBytes = Int(Double(total.vectorBytes) * scale)
        total.payloadBytes = Int(Double(total.payloadBytes) * scale)
        return total
    }

    /// The stored vector `name` of point `id`, or nil when the point (or that vector) is missing.
    public func vector(of id: PointID, name: String, shardKey: ShardKeySelector? = nil) async throws(StorageError) -> [Float]? {
        let shardIDs = Set(ShardHolder.targets(of: id, in: try scope(shardKey, write: false)).map(\.id))
        for response in try await fanOut(.vector(id: id, name: name), [layout.filter { shardIDs.contains($0.id) }]) {
            if case .vector(let vector?) = response { return vector }
        }
        return nil
    }

    /// `GET /collections/{c}/cluster` as this peer sees it.
    public func clusterInfo() async -> CollectionClusterInfo {
        var local: [CollectionClusterInfo.Local] = []
        var remote: [CollectionClusterInfo.Remote] = []
        for shard in layout {
            for peer in shard.peers {
                if isLocal(peer), let held = shards[shard.id] {
                    local.append(.init(shardID: shard.id, shardKey: shard.key, pointsCount: await held.pointCount, state: shard.state(of: peer)))
                } else if !isLocal(peer) {
                    remote.append(.init(shardID: shard.id, shardKey: shard.key, peerID: peer, state: shard.state(of: peer)))
                }
            }
        }
        return CollectionClusterInfo(peerID: peerID, shardCount: layout.count, localShards: local, remoteShards: remote)
    }

    /// Shards for a new shard key, placed over `peers` (continuing the shard ids) with the request's
    /// numbers or the collection's.
    public func placeShardKey(_ request: CreateShardingKey, peers: [UInt64]) -> [ShardInfo] {
        ShardPlacement.place(count: Int(request.shardsNumber ?? config.params.shardNumber),
                             replicas: Int(request.replicationFactor ?? config.params.replicationFactor), peers: peers,
                             firstID: layout.map { $0.id + 1 }.max() ?? 0, key: request.shardKey, existing: layout)
    }

    /// The collection's shard keys, or nil under automatic sharding.
    public var shardKeys: [ShardKey]? {
        guard config.params.shardingMethod == .custom else { return nil }
        var keys: [ShardKey] = []
        for shard in layout { if let key = shard.key, !keys.contains(key) { keys.append(key) } }
        return keys
    }
}
