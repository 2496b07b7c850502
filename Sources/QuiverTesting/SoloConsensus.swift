public import Consensus
import Dispatch
import Synchronization

/// A one-member consensus engine for in-process tests: every proposal is committed at once and
/// applied on the engine's own thread, as the real engine does, in order. Snapshots can be taken
/// and handed to another state machine to stand for a snapshot install.
public final class SoloConsensus: ConsensusEngine, @unchecked Sendable {
    private let machine: any ConsensusStateMachine
    private let queue = DispatchQueue(label: "solo-consensus")
    private let state = Mutex<(index: UInt64, stopped: Bool)>((0, false))
    public let peerId: UInt64

    public init(peerId: UInt64 = 1, machine: any ConsensusStateMachine, startIndex: UInt64 = 0) {
        self.peerId = peerId
        self.machine = machine
        state.withLock { $0.index = startIndex }
    }

    public var status: ConsensusStatus {
        let (index, stopped) = state.withLock { ($0.index, $0.stopped) }
        return ConsensusStatus(
            peerId: peerId, role: stopped ? .unavailable : .leader, leader: stopped ? nil : peerId, term: 1,
            commit: index, applied: index, lastIndex: index, snapshotIndex: 0,
            members: [ConsensusMember(id: peerId, address: "solo", role: .voter)], heartbeat: index, stopped: stopped
        )
    }

    /// Entries proposed so far, in order (for replaying them into another state machine).
    public private(set) var log: [[UInt8]] {
        get { logStorage.withLock { $0 } }
        set { logStorage.withLock { $0 = newValue } }
    }
    private let logStorage = Mutex<[[UInt8]]>([])

    public func propose(_ entry: [UInt8]) async throws(ConsensusError) -> UInt64 {
        try await onQueue { () throws(ConsensusError) -> UInt64 in
            let index = try self.state.withLock { state throws(ConsensusError) -> UInt64 in
                if state.stopped { throw .shutdown }
                state.index += 1
                return state.index
            }
            self.logStorage.withLock { $0.append(entry) }
            self.machine.apply(index: index, entry: entry)
            return index
        }
    }

    public func addLearner(id: UInt64, address: String) async throws(ConsensusError) { throw .failed(code: 0, message: "solo engine has one member") }
    public func promote(id: UInt64) async throws(ConsensusError) { throw .failed(code: 0, message: "solo engine has one member") }
    public func remove(id: UInt64) async throws(ConsensusError) { throw .failed(code: 0, message: "solo engine has one member") }
    public func barrier() async throws(ConsensusError) {}

    public func shutdown() { state.withLock { $0.stopped = true } }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws(ConsensusError) -> T) async throws(ConsensusError) -> T {
        let result: Result<T, ConsensusError> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(ConsensusError) -> T in try body() }) }
        }
        return try result.get()
    }
}
