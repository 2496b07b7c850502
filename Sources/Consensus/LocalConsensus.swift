import Dispatch
import Synchronization

/// A one-member consensus engine: every proposal is committed at once and applied on the engine's
/// own thread, in order, as ``RaftEngine`` applies committed entries. A single node runs its
/// metadata changes through it, so they take the same path as a cluster's; nothing is persisted
/// (the state machine's effects are). With `recordsLog`, the entries are kept (for tests that
/// replay them into another state machine).
public final class LocalConsensus: ConsensusEngine, @unchecked Sendable {
    private let machine: any ConsensusStateMachine
    private let queue = DispatchQueue(label: "local-consensus")
    private let state = Mutex<(index: UInt64, stopped: Bool)>((0, false))
    private let recordsLog: Bool
    public let peerId: UInt64

    /// Entries proposed from now on get indexes after `startIndex`.
    public init(peerId: UInt64 = 1, machine: any ConsensusStateMachine, startIndex: UInt64 = 0, recordsLog: Bool = false) {
        self.peerId = peerId
        self.machine = machine
        self.recordsLog = recordsLog
        state.withLock { $0.index = startIndex }
    }

    public var status: ConsensusStatus {
        let (index, stopped) = state.withLock { ($0.index, $0.stopped) }
        return ConsensusStatus(
            peerId: peerId, role: stopped ? .unavailable : .leader, leader: stopped ? nil : peerId, term: 1,
            commit: index, applied: index, lastIndex: index, snapshotIndex: 0,
            members: [ConsensusMember(id: peerId, address: "local", role: .voter)], heartbeat: index, stopped: stopped
        )
    }

    /// Entries proposed so far, in order, when the engine records them.
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
            if self.recordsLog { self.logStorage.withLock { $0.append(entry) } }
            self.machine.apply(index: index, entry: entry)
            return index
        }
    }

    public func addLearner(id: UInt64, address: String) async throws(ConsensusError) { throw .failed(code: 0, message: "the local consensus engine has one member") }
    public func promote(id: UInt64) async throws(ConsensusError) { throw .failed(code: 0, message: "the local consensus engine has one member") }
    public func remove(id: UInt64) async throws(ConsensusError) { throw .failed(code: 0, message: "the local consensus engine has one member") }
    public func barrier() async throws(ConsensusError) {}

    public func shutdown() { state.withLock { $0.stopped = true } }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws(ConsensusError) -> T) async throws(ConsensusError) -> T {
        let result: Result<T, ConsensusError> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(ConsensusError) -> T in try body() }) }
        }
        return try result.get()
    }
}
