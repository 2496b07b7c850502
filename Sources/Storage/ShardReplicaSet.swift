public import QuiverModel

// The replica-set decisions (DESIGN.md §6) as pure values over replica states: which replicas an
// update goes to, who leads an ordered write, whether a write's replies make it a success and which
// replicas to disable, which replicas a read asks and how many must answer. No IO happens here, so
// unit tests and the seeded simulation drive every combination. Semantics are Qdrant 1.19's.

extension ReplicaState {
    /// Serves reads: `Active`, `ReshardingScaleDown`, `ActiveRead`. (`Listener` never does.)
    public var isReadable: Bool {
        switch self {
        case .active, .reshardingScaleDown, .activeRead: true
        case .dead, .partial, .initializing, .listener, .partialSnapshot, .recovery, .resharding, .manualRecovery: false
        }
    }

    /// Is sent updates. `Dead`, `Recovery`, `PartialSnapshot` and `ManualRecovery` are not.
    public var isUpdatable: Bool {
        switch self {
        case .active, .partial, .initializing, .listener, .resharding, .reshardingScaleDown, .activeRead: true
        case .dead, .partialSnapshot, .recovery, .manualRecovery: false
        }
    }

    /// A write counts only if at least one replica in such a state applied it; the medium-ordering
    /// leader is one of these.
    public var canBeSourceOfTruth: Bool {
        switch self {
        case .active, .activeRead, .resharding, .reshardingScaleDown: true
        case .dead, .partial, .initializing, .listener, .partialSnapshot, .recovery, .manualRecovery: false
        }
    }

    /// Counted as active when deciding whether a replica is the last one (`Active`, `ReshardingScaleDown`).
    public var isActive: Bool { self == .active || self == .reshardingScaleDown }

    /// Receiving data rather than serving it.
    public var isPartialOrRecovery: Bool {
        switch self {
        case .partial, .manualRecovery, .partialSnapshot, .recovery, .resharding, .reshardingScaleDown, .activeRead: true
        case .active, .dead, .initializing, .listener: false
        }
    }

    /// Whether a replica in this state applies an update it receives: the updatable states always,
    /// `Recovery` and `PartialSnapshot` only a forced one (a transfer's), `Dead` and
    /// `ManualRecovery` only an internal forced one.
    public func accepts(forced: Bool, internalForce: Bool = false) -> Bool {
        switch self {
        case .active, .partial, .initializing, .listener, .resharding, .reshardingScaleDown, .activeRead: true
        case .partialSnapshot, .recovery: forced || internalForce
        case .dead, .manualRecovery: internalForce
        }
    }
}

/// `ordering` of a write: who serializes it.
public enum WriteOrdering: String, Sendable, CaseIterable {
    /// Every peer applies what it receives as it comes.
    case weak
    /// Through the highest peer among the replicas that can be a source of truth.
    case medium
    /// Through the highest peer of the replica set, whatever its state.
    case strong
}

/// How several replicas' answers combine: an item is kept when this many of them returned it.
public enum ReadResolution: Sendable, Equatable {
    case all
    case majority

    /// Of `responses` answers, how many must agree on an item.
    public func agreeing(of responses: Int) -> Int {
        switch self {
        case .all: responses
        case .majority: responses / 2 + 1
        }
    }

    /// Counts: the smallest with `all`, the median with `majority`.
    public func resolve(counts: [Int]) -> Int {
        guard !counts.isEmpty else { return 0 }
        let sorted = counts.sorted()
        return self == .all ? sorted[0] : sorted[sorted.count / 2]
    }

    /// Lists of items (points, records): items returned, equal, by enough replicas, in the order
    /// the first response has them (then those first seen in later responses).
    public func resolve<Item: Hashable>(_ responses: [[Item]]) -> [Item] {
        guard responses.count > 1 else { return responses.first ?? [] }
        var seen: [Item: Int] = [:]
        for response in responses { for item in Set(response) { seen[item, default: 0] += 1 } }
        let needed = agreeing(of: responses.count)
        var emitted = Set<Item>()
        var result: [Item] = []
        for response in responses {
            for item in response where seen[item, default: 0] >= needed && emitted.insert(item).inserted { result.append(item) }
        }
        return result
    }
}

/// One shard's replicas, their states and the peers this peer has stopped sending updates to.
public struct ShardReplicaSet: Sendable, Equatable {
    public let shardID: UInt32
    public let thisPeer: UInt64
    public private(set) var states: [UInt64: ReplicaState]
    /// Peers disabled here after a failed write, with the state they had (nil when it was a
    /// partial or recovery state), until consensus changes their state.
    public private(set) var locallyDisabled: [UInt64: ReplicaState?] = [:]

    public init(shardID: UInt32, thisPeer: UInt64, states: [UInt64: ReplicaState]) {
        self.shardID = shardID
        self.thisPeer = thisPeer
        self.states = states
    }

    public var peers: [UInt64] { states.keys.sorted() }

    public func isUpdatable(_ peer: UInt64) -> Bool { states[peer]?.isUpdatable == true && locallyDisabled[peer] == nil }
    public func isReadable(_ peer: UInt64) -> Bool { states[peer]?.isReadable == true && locallyDisabled[peer] == nil }
    public func canBeSourceOfTruth(_ peer: UInt64) -> Bool { states[peer]?.canBeSourceOfTruth == true && locallyDisabled[peer] == nil }

    /// The replicas an update is sent to, in peer order.
    public var updateTargets: [UInt64] { peers.filter(isUpdatable) }

    /// The peer that serializes a write of `ordering`: this one for `weak`; the highest peer that
    /// can be a source of truth for `medium`; the highest peer of the set for `strong`.
    public func leader(for ordering: WriteOrdering) -> UInt64? {
        switch ordering {
        case .weak: thisPeer
        case .medium: peers.last(where: canBeSourceOfTruth)
        case .strong: peers.last
        }
    }

    // MARK: State changes

    /// A state decided by consensus. A peer that gets a state is no longer locally disabled; when
    /// every active or resharding peer is disabled, none stays disabled.
    public mutating func setState(_ state: ReplicaState?, of peer: UInt64) {
        states[peer] = state
        locallyDisabled[peer] = nil
        clearDisabledIfNoneServes()
    }

    /// Stops sending updates to `peer`. Refused (false) when it would disable the last active or
    /// resharding replica, which must keep taking writes.
    @discardableResult
    public mutating func disableLocally(_ peer: UInt64) -> Bool {
        guard let state = states[peer] else { return false }
        if locallyDisabled[peer] == nil {
            let others = peers.filter { $0 != peer && states[$0]!.isActiveOrResharding }
            if others.allSatisfy({ locallyDisabled[$0] != nil }) { return false }
        }
        locallyDisabled[peer] = .some(state.isPartialOrRecovery ? nil : state)
        return true
    }

    private mutating func clearDisabledIfNoneServes() {
        let serving = peers.filter { states[$0]!.isActiveOrResharding }
        if !serving.isEmpty && serving.allSatisfy({ locallyDisabled[$0] != nil }) { locallyDisabled = [:] }
    }

    // MARK: Writes

    /// One replica's reply to an update.
    public enum Reply: Sendable, Equatable {
        /// Applied; `completed` when it waited for the write to be visible (`wait=true`).
        case applied(completed: Bool)
        /// Refused because the replica has seen a newer tick of this clock; `tick` is its tick.
        case clockRejected(tick: UInt64)
        /// Failed. A transient failure (unreachable, timeout, its own IO error) says nothing
        /// against the request; `missingPoint` and `precondition` are the replica's answer that it
        /// lacks the point or the shard.
        case failed(StorageError, transient: Bool, missingPoint: Bool = false, precondition: Bool = false)

        public var isTransient: Bool {
            if case .failed(_, true, _, _) = self { true } else { false }
        }
    }

    /// What the replies of one update attempt mean.
    public struct WriteDecision: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            case success
            /// A replica rejected the clock tick: send again with a tick after `tick`.
            case retry(afterTick: UInt64)
            /// The first failure, as the replica reported it.
            case failed(StorageError)
            /// Applied somewhere, but on no replica that can be a source of truth.
            case noSourceOfTruth(StorageError)
        }

        public var outcome: Outcome
        /// Replicas to disable locally and report to consensus as `Dead`.
        public var disable: [UInt64]
        /// Whether a `wait=true` request waits for consensus to deactivate them.
        public var waitForDeactivation: Bool
    }

    /// Judges the replies to an update sent to ``updateTargets`` (Qdrant's rules): with any
    /// failure, at least `writeConsistencyFactor` replicas (capped at the number of replicas,
    /// whatever their state) must have applied it, and then the failed replicas are disabled (only
    /// transient failures when no reply was a completed write); one applying replica must be able
    /// to be a source of truth; a clock rejection asks for another attempt.
    public func judge(_ replies: [(peer: UInt64, reply: Reply)], writeConsistencyFactor: Int,
                      updateOnlyExisting: Bool = false) -> WriteDecision {
        let successes = replies.filter { if case .failed = $0.reply { false } else { true } }
        let failures = replies.compactMap { entry -> (UInt64, StorageError, transient: Bool, missing: Bool, precondition: Bool)? in
            guard case .failed(let error, let transient, let missing, let precondition) = entry.reply else { return nil }
            return (entry.peer, error, transient, missing, precondition)
        }
        let required = min(max(writeConsistencyFactor, 1), states.count)
        var disable: [UInt64] = []
        var wait = false
        if let first = failures.first {
            if successes.count >= required {
                let anyCompleted = successes.contains { $0.reply == .applied(completed: true) }
                for failure in failures where anyCompleted || failure.transient {
                    guard let state = states[failure.0], state != .dead, state != .listener, state != .manualRecovery else { continue }
                    if state.isPartialOrRecovery && (failure.precondition || failure.missing) { continue }
                    if updateOnlyExisting && failure.missing { continue }
                    if failure.transient || state == .initializing { wait = true }
                    disable.append(failure.0)
                }
            } else {
                disable = failures.filter { states[$0.0]?.isResharding == true }.map(\.0)
                return WriteDecision(outcome: .failed(first.1), disable: disable, waitForDeactivation: false)
            }
        }
        guard successes.contains(where: { canBeSourceOfTruth($0.peer) }) else {
            let cause = failures.first?.1 ?? .unavailable("no replica that can serve reads applied the update")
            return WriteDecision(outcome: .noSourceOfTruth(cause), disable: disable, waitForDeactivation: wait)
        }
        let rejected = successes.compactMap { if case .clockRejected(let tick) = $0.reply { tick } else { nil } }
        if let tick = rejected.max() { return WriteDecision(outcome: .retry(afterTick: tick), disable: disable, waitForDeactivation: wait) }
        return WriteDecision(outcome: .success, disable: disable, waitForDeactivation: wait)
    }

    // MARK: Reads

    /// Which replicas a read asks, in order, how many must answer, and how answers combine.
    public struct ReadPlan: Sendable, Equatable {
        /// Readable replicas: this peer first when it is one, then the others in the order given.
        public var candidates: [UInt64]
        public var required: Int
        public var resolution: ReadResolution
    }

    /// The plan for a read of `consistency`. Counts take every replica (a `Dead` one too, so `all`
    /// fails while one is dead); initializing replicas lower what is required but are not asked.
    /// `order` is the order to try other peers in (shuffled by the caller's random source).
    public func readPlan(_ consistency: ReadConsistency, order: [UInt64]) throws(StorageError) -> ReadPlan {
        let total = states.count
        let readable = peers.filter(isReadable)
        let initializing = peers.filter { states[$0] == .initializing && locallyDisabled[$0] == nil }.count
        var (required, resolution): (Int, ReadResolution) = switch consistency {
        case .all: (total, .all)
        case .majority: (total, .majority)
        case .quorum: (total / 2 + 1, .all)
        case .factor(let n): (min(max(n, 1), max(total, 1)), .all)
        }
        guard readable.count + initializing >= required else {
            throw .unavailable("The replica set for shard \(shardID) on peer \(thisPeer) does not have enough active replicas")
        }
        if readable.count < required { required = max(required - initializing, readable.count) }
        var candidates = readable.contains(thisPeer) ? [thisPeer] : []
        candidates += order.filter { $0 != thisPeer && readable.contains($0) }
        candidates += readable.filter { !candidates.contains($0) }
        return ReadPlan(candidates: candidates, required: required, resolution: resolution)
    }
}

extension ReplicaState {
    /// `Active`, `Resharding`, `ReshardingScaleDown`: the replicas that must keep taking writes.
    var isActiveOrResharding: Bool { self == .active || self == .resharding || self == .reshardingScaleDown }

    var isResharding: Bool { self == .resharding || self == .reshardingScaleDown }
}
