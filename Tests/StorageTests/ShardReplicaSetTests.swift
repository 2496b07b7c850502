import QuiverModel
import Shard
@testable import Storage
import Testing

/// The replica-set decisions over every state, ordering and consistency (Qdrant 1.19's rules).
@Suite struct ShardReplicaSetTests {
    static let states = ReplicaState.allCases

    @Test func stateTableAsQdrantsAndTheSeed() {
        // State: (takes updates, forced only, serves reads, can be a source of truth)
        let table: [ReplicaState: (update: Bool, forcedOnly: Bool, read: Bool, truth: Bool)] = [
            .active: (true, false, true, true),
            .dead: (false, false, false, false),
            .partial: (true, false, false, false),
            .initializing: (true, false, false, false),
            .listener: (true, false, false, false),
            .partialSnapshot: (false, true, false, false),
            .recovery: (false, true, false, false),
            .resharding: (true, false, false, true),
            .reshardingScaleDown: (true, false, true, true),
            .activeRead: (true, false, true, true),
            .manualRecovery: (false, false, false, false),
        ]
        #expect(Set(table.keys) == Set(Self.states))
        for (state, row) in table {
            #expect(state.isUpdatable == row.update, "\(state)")
            #expect(state.accepts(forced: false) == row.update, "\(state)")
            #expect(state.accepts(forced: true) == (row.update || row.forcedOnly), "\(state)")
            #expect(state.isReadable == row.read, "\(state)")
            #expect(state.canBeSourceOfTruth == row.truth, "\(state)")
        }
        #expect(ReplicaState.dead.accepts(forced: true, internalForce: true) && ReplicaState.manualRecovery.accepts(forced: false, internalForce: true))
    }

    @Test(arguments: states)
    func leadersForEveryOrdering(highestState: ReplicaState) {
        // Peer 3 has `highestState`, peers 1 and 2 are Active; this peer is 1.
        let set = ShardReplicaSet(shardID: 0, thisPeer: 1, states: [1: .active, 2: .active, 3: highestState])
        #expect(set.leader(for: .weak) == 1)
        #expect(set.leader(for: .strong) == 3)
        #expect(set.leader(for: .medium) == (highestState.canBeSourceOfTruth ? 3 : 2))
        #expect(set.updateTargets == (highestState.isUpdatable ? [1, 2, 3] : [1, 2]))
    }

    @Test func noMediumLeaderWithoutASourceOfTruth() {
        var set = ShardReplicaSet(shardID: 0, thisPeer: 1, states: [1: .partial, 2: .dead])
        #expect(set.leader(for: .medium) == nil && set.leader(for: .strong) == 2)
        set.setState(.active, of: 2)
        #expect(set.leader(for: .medium) == 2)
    }

    @Test func locallyDisabledPeersGetNoUpdatesAndNoReadsButTheLastActiveStays() throws {
        var set = ShardReplicaSet(shardID: 4, thisPeer: 1, states: [1: .active, 2: .active, 3: .partial])
        let disabledTwo = set.disableLocally(2)
        #expect(disabledTwo)
        #expect(set.updateTargets == [1, 3])
        #expect(set.leader(for: .medium) == 1)
        #expect(try set.readPlan(.factor(1), order: [2, 3]).candidates == [1])
        // Peer 1 is now the only active replica not disabled: it cannot be disabled.
        let disabledOne = set.disableLocally(1)
        #expect(!disabledOne)
        #expect(set.updateTargets == [1, 3])
        // A partial replica remembers no state to come back from.
        let disabledThree = set.disableLocally(3)
        #expect(disabledThree)
        #expect(set.locallyDisabled[3] == .some(nil) && set.locallyDisabled[2] == .some(.active))
        // Consensus deciding a state ends the local disabling of that peer.
        set.setState(.dead, of: 2)
        #expect(set.locallyDisabled[2] == nil && set.states[2] == .dead)
    }

    @Test func readPlansForEveryConsistency() throws {
        let set = ShardReplicaSet(shardID: 0, thisPeer: 2, states: [1: .active, 2: .active, 3: .active, 4: .dead, 5: .listener])
        // Five replicas count; three are readable.
        #expect(try set.readPlan(.factor(1), order: [3, 1]) == .init(candidates: [2, 3, 1], required: 1, resolution: .all))
        #expect(try set.readPlan(.factor(3), order: [1, 3]).required == 3)
        #expect(try set.readPlan(.quorum, order: []) == .init(candidates: [2, 1, 3], required: 3, resolution: .all))
        #expect(throws: StorageError.self) { try set.readPlan(.majority, order: []) }
        #expect(throws: StorageError.self) { try set.readPlan(.all, order: []) }
        #expect(throws: StorageError.self) { try set.readPlan(.factor(4), order: []) }
        let healthy = ShardReplicaSet(shardID: 0, thisPeer: 9, states: [1: .active, 2: .active, 3: .active])
        #expect(try healthy.readPlan(.majority, order: [3, 2, 1]) == .init(candidates: [3, 2, 1], required: 3, resolution: .majority))
        #expect(try healthy.readPlan(.factor(10), order: []).required == 3)
        // Initializing replicas lower what is required but are never asked.
        let young = ShardReplicaSet(shardID: 0, thisPeer: 1, states: [1: .active, 2: .initializing])
        #expect(try young.readPlan(.all, order: [2]) == .init(candidates: [1], required: 1, resolution: .all))
    }

    @Test func consistencyParameterValues() {
        #expect(ReadConsistency(parameter: "all") == .all && ReadConsistency(parameter: "majority") == .majority)
        #expect(ReadConsistency(parameter: "quorum") == .quorum && ReadConsistency(parameter: "2") == .factor(2))
        #expect(ReadConsistency(parameter: "0") == nil && ReadConsistency(parameter: "most") == nil && ReadConsistency(parameter: "-1") == nil)
    }

    @Test func resolutionKeepsWhatEnoughReplicasReturned() {
        #expect(ReadResolution.all.resolve(counts: [5, 3, 4]) == 3)
        #expect(ReadResolution.majority.resolve(counts: [5, 3, 4]) == 4)
        #expect(ReadResolution.all.resolve([[1, 2, 3], [2, 3, 4]]) == [2, 3])
        #expect(ReadResolution.majority.resolve([[1, 2, 3], [2, 3, 4], [3, 4, 5]]) == [2, 3, 4])
        #expect(ReadResolution.majority.resolve([[7, 8]]) == [7, 8])
    }

    // MARK: Writes

    let unreachable = StorageError.unavailable("peer down")

    func set(_ states: [UInt64: ReplicaState]) -> ShardReplicaSet { ShardReplicaSet(shardID: 1, thisPeer: 1, states: states) }

    @Test func allAppliedIsASuccessWhateverTheFactor() {
        let decision = set([1: .active, 2: .active, 3: .dead]).judge([(1, .applied(completed: true)), (2, .applied(completed: true))],
                                                                     writeConsistencyFactor: 3)
        #expect(decision == .init(outcome: .success, disable: [], waitForDeactivation: false))
    }

    @Test func enoughSuccessesDisableTheFailedReplicas() {
        let replicas = set([1: .active, 2: .active, 3: .active])
        let replies: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [
            (1, .applied(completed: true)), (2, .applied(completed: true)), (3, .failed(unreachable, transient: true)),
        ]
        #expect(replicas.judge(replies, writeConsistencyFactor: 2) == .init(outcome: .success, disable: [3], waitForDeactivation: true))
        // Too few: the first failure is the answer and nobody is disabled.
        #expect(replicas.judge(replies, writeConsistencyFactor: 3) == .init(outcome: .failed(unreachable), disable: [], waitForDeactivation: false))
        // A non-transient failure disables without waiting, but only when some reply completed.
        let bad = StorageError.serviceError("disk full")
        let acknowledged: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [(1, .applied(completed: false)), (3, .failed(bad, transient: false))]
        #expect(replicas.judge(acknowledged, writeConsistencyFactor: 1).disable == [])
        let completed: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [(1, .applied(completed: true)), (3, .failed(bad, transient: false))]
        #expect(replicas.judge(completed, writeConsistencyFactor: 1) == .init(outcome: .success, disable: [3], waitForDeactivation: false))
    }

    @Test func failuresThatSayNothingAgainstAReplicaAreNotHeldAgainstIt() {
        let replicas = set([1: .active, 2: .listener, 3: .partial, 4: .initializing])
        let missing = StorageError.notFound("No point with id 5 found")
        let replies: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [
            (1, .applied(completed: true)), (2, .failed(unreachable, transient: true)),
            (3, .failed(missing, transient: false, missingPoint: true)), (4, .failed(.serviceError("x"), transient: false)),
        ]
        // Listener failures are ignored, a partial replica may lack the point; an initializing one is waited for.
        #expect(replicas.judge(replies, writeConsistencyFactor: 1) == .init(outcome: .success, disable: [4], waitForDeactivation: true))
        let active = set([1: .active, 2: .active])
        let onlyExisting: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [(1, .applied(completed: true)), (2, .failed(missing, transient: false, missingPoint: true))]
        #expect(active.judge(onlyExisting, writeConsistencyFactor: 1, updateOnlyExisting: true).disable == [])
        #expect(active.judge(onlyExisting, writeConsistencyFactor: 1).disable == [2])
    }

    @Test func aWriteNeedsASourceOfTruth() {
        let replicas = set([1: .partial, 2: .active])
        let decision = replicas.judge([(1, .applied(completed: true)), (2, .failed(unreachable, transient: true))], writeConsistencyFactor: 1)
        #expect(decision.outcome == .noSourceOfTruth(unreachable))
        #expect(decision.disable == [2])
    }

    @Test func aClockRejectionAsksForAnotherAttempt() {
        let replicas = set([1: .active, 2: .active])
        let decision = replicas.judge([(1, .applied(completed: true)), (2, .clockRejected(tick: 41))], writeConsistencyFactor: 2)
        #expect(decision == .init(outcome: .retry(afterTick: 41), disable: [], waitForDeactivation: false))
    }

    @Test func factorIsCappedAtTheNumberOfReplicas() {
        let replicas = set([1: .active, 2: .active])
        let replies: [(peer: UInt64, reply: ShardReplicaSet.Reply)] = [(1, .applied(completed: true)), (2, .failed(unreachable, transient: true))]
        #expect(replicas.judge(replies, writeConsistencyFactor: 1).outcome == .success)
        #expect(replicas.judge(replies, writeConsistencyFactor: 5).outcome == .failed(unreachable))
        #expect(set([1: .active, 2: .active, 3: .resharding]).judge([(1, .failed(unreachable, transient: true)), (3, .failed(unreachable, transient: true))],
                                                                     writeConsistencyFactor: 1) == .init(outcome: .failed(unreachable), disable: [3], waitForDeactivation: false))
    }
}

@Suite struct ClockTests {
    @Test func aReplicaTakesNewerTicksAndTheSameSendAgain() {
        var map = ClockMap()
        func offer(_ tick: UInt64, _ token: UInt64, peer: UInt64 = 1, force: Bool = false) -> (Bool, UInt64) {
            var tag = ClockTag(peerID: peer, clockID: 0, tick: tick, token: token, force: force)
            let accepted = map.advance(&tag)
            return (accepted, tag.tick)
        }
        #expect(offer(5, 77) == (true, 5))
        #expect(offer(5, 77) == (true, 5))      // the same send, retried
        #expect(offer(5, 78) == (false, 5))     // same tick, another update: rejected, tick echoed
        #expect(offer(3, 1) == (false, 5))
        #expect(offer(2, 2, force: true) == (true, 2))
        #expect(map.tick(of: 1, clock: 0) == 5)
        #expect(offer(6, 3) == (true, 6))
        #expect(map.tick(of: 1, clock: 0) == 6)
        #expect(offer(0, 4, peer: 2) == (false, 0))   // tick 0 of an unknown clock is refused
        #expect(offer(1, 9, peer: 2) == (true, 1))    // clocks are per peer and clock id
    }

    @Test func aFreshClockLearnsTheReplicasTickFromTheRejectionOfTickZero() throws {
        var sender = ClockSet(limit: 2)
        var replica = ClockMap()
        var seeded = ClockTag(peerID: 1, clockID: 0, tick: 9, token: 1)
        let seededAccepted = replica.advance(&seeded)
        #expect(seededAccepted)
        let acquired = sender.acquire()
        let clock = try #require(acquired)
        let firstTicks = [sender.tick(clock), sender.tick(clock)]
        #expect(firstTicks == [0, 0])                     // a fresh clock keeps sending 0
        var first = ClockTag(peerID: 1, clockID: clock, tick: 0, token: 2)
        let firstAccepted = replica.advance(&first)
        #expect(!firstAccepted && first.tick == 9)
        sender.advance(clock, past: first.tick)
        let next = sender.tick(clock)
        #expect(next == 10)
        var retry = ClockTag(peerID: 1, clockID: clock, tick: next, token: 3)
        let retryAccepted = replica.advance(&retry)
        #expect(retryAccepted)
        let after = sender.tick(clock)
        #expect(after == 11)
        // Clocks are shared out one per update, up to the limit, and come back.
        let acquiredSecond = sender.acquire()
        let second = try #require(acquiredSecond)
        let third = sender.acquire()
        #expect(second != clock && third == nil)
        sender.release(clock)
        let again = sender.acquire()
        #expect(again == clock)
    }
}
