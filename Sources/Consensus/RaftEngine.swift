import CChecksum
import CRaftBridge
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// ``ConsensusEngine`` on libraft (canonical/raft) with libuv storage in `directory`.
///
/// The C bridge (`CRaftBridge`) runs libraft on its own loop thread; this class turns its
/// completion callbacks into async results. Raft's peer streams are socketpairs: for every stream
/// libraft opens, `connector` receives one end and carries its bytes to the peer (the p2p service
/// does that over gRPC), and streams arriving from peers are handed in with ``accept(peer:address:fd:)``.
public final class RaftEngine: ConsensusEngine, @unchecked Sendable {
    public struct Options: Sendable {
        public var electionTimeoutMs: UInt32 = 1000
        public var heartbeatTimeoutMs: UInt32 = 100
        /// Take a snapshot (and compact the log) every this many entries.
        public var snapshotThreshold: UInt32 = 128
        /// Entries kept in the log behind a snapshot.
        public var snapshotTrailing: UInt32 = 64
        public var connectRetryDelayMs: UInt32 = 300

        public init() {}
    }

    /// How the engine finds its first configuration.
    public enum Start: Sendable {
        /// Found a new cluster with this peer as its only voter, unless `directory` already holds state.
        case bootstrap
        /// Start with no configuration and wait for a leader to add this peer.
        case join
        /// Re-found the cluster from this peer's log: it becomes the only voter (libraft's raft_recover).
        case recover
    }

    public typealias Connector = @Sendable (_ peer: UInt64, _ address: String, _ fd: Int32) -> Void

    private let node: OpaquePointer
    private let machine: any ConsensusStateMachine
    private let connector: Connector
    private let waiting = Mutex<[UInt64: CheckedContinuation<Result<UInt64, ConsensusError>, Never>]>([:])
    private let nextToken = Atomic<UInt64>(1)
    private let barrierTerm = Atomic<UInt64>(0)
    private let stopped = Atomic<Bool>(false)
    /// Why the state machine refused the last snapshot it was given, for the error of `start`.
    private let restoreFailure = Mutex<String?>(nil)

    public let peerId: UInt64

    /// Opens (or creates) the raft state in `directory`. Nothing runs until ``start(_:)``.
    public init(directory: String, peerId: UInt64, address: String, machine: any ConsensusStateMachine,
                options: Options = Options(), connector: @escaping Connector) throws(ConsensusError) {
        self.peerId = peerId
        self.machine = machine
        self.connector = connector
        var errorText = [CChar](repeating: 0, count: 512)
        var opts = qr_options()
        opts.election_timeout_ms = options.electionTimeoutMs
        opts.heartbeat_timeout_ms = options.heartbeatTimeoutMs
        opts.snapshot_threshold = options.snapshotThreshold
        opts.snapshot_trailing = options.snapshotTrailing
        opts.connect_retry_delay_ms = options.connectRetryDelayMs
        let context = RaftEngineContext()
        guard let created = directory.withCString({ dir in
            address.withCString { addr in
                qr_create(dir, peerId, addr, Self.trampolines(context), opts, &errorText, errorText.count)
            }
        }) else {
            throw .failed(code: 18, message: Self.text(errorText))
        }
        node = created
        self.context = context
        context.engine = self
    }

    /// What the C callbacks point at: the engine is weak so that dropping the engine frees it.
    private let context: RaftEngineContext

    /// Starts the engine. Returns true if this call founded a new cluster (`.bootstrap` on an empty
    /// directory).
    @discardableResult
    public func start(_ start: Start) throws(ConsensusError) -> Bool {
        var errorText = [CChar](repeating: 0, count: 512)
        var founded = false
        switch start {
        case .bootstrap:
            let rv = qr_bootstrap(node, &errorText, errorText.count)
            if rv == 0 {
                founded = true
            } else if rv != 10 {  // RAFT_CANTBOOTSTRAP: state exists, just start
                throw .failed(code: rv, message: Self.text(errorText))
            }
        case .join:
            break
        case .recover:
            let rv = qr_recover_single(node, &errorText, errorText.count)
            if rv != 0 { throw .failed(code: rv, message: Self.text(errorText)) }
        }
        let rv = qr_start(node, &errorText, errorText.count)
        if rv != 0 {
            let refusal = restoreFailure.withLock { $0 }
            throw .failed(code: rv, message: refusal.map { "the consensus snapshot does not restore: \($0)" } ?? Self.text(errorText))
        }
        return founded
    }

    /// A stream opened by peer `peer`; the engine owns `fd` from now on.
    public func accept(peer: UInt64, address: String, fd: Int32) {
        if stopped.load(ordering: .acquiring) {
            close(fd)
            return
        }
        address.withCString { qr_accept(node, peer, $0, fd) }
    }

    public var status: ConsensusStatus {
        var raw = qr_status()
        qr_get_status(node, &raw)
        var members: [ConsensusMember] = []
        withUnsafePointer(to: &raw.servers) { tuple in
            tuple.withMemoryRebound(to: qr_server_info.self, capacity: Int(QR_MAX_SERVERS)) { servers in
                for i in 0..<Int(raw.n_servers) {
                    var server = servers[i]
                    let address = withUnsafePointer(to: &server.address) {
                        $0.withMemoryRebound(to: CChar.self, capacity: Int(QR_ADDRESS_MAX)) { String(cString: $0) }
                    }
                    let role: MemberRole = switch server.role {
                    case Int32(QR_VOTER): .voter
                    case Int32(QR_STANDBY): .learner
                    default: .spare
                    }
                    members.append(ConsensusMember(id: server.id, address: address, role: role))
                }
            }
        }
        let role: ConsensusRole = switch raw.state {
        case Int32(QR_FOLLOWER): .follower
        case Int32(QR_CANDIDATE): .candidate
        case Int32(QR_LEADER): .leader
        default: .unavailable
        }
        return ConsensusStatus(
            peerId: peerId, role: role, leader: raw.leader_id == 0 ? nil : raw.leader_id, term: raw.term,
            commit: raw.commit_index, applied: raw.last_applied, lastIndex: raw.last_index,
            snapshotIndex: raw.snapshot_index, members: members, heartbeat: raw.loop_iterations,
            stopped: raw.stopped != 0 || stopped.load(ordering: .acquiring)
        )
    }

    public func propose(_ entry: [UInt8]) async throws(ConsensusError) -> UInt64 {
        try await ensureBarrier()
        return try await request { token in
            entry.withUnsafeBytes { qr_propose(node, token, $0.baseAddress, $0.count) }
        }
    }

    public func addLearner(id: UInt64, address: String) async throws(ConsensusError) {
        if status.member(id) == nil {
            _ = try await request { token in address.withCString { qr_add(node, token, id, $0) } }
        }
        if status.member(id)?.role != .learner && status.member(id)?.role != .voter {
            _ = try await request { token in qr_assign(node, token, id, Int32(QR_STANDBY)) }
        }
    }

    public func promote(id: UInt64) async throws(ConsensusError) {
        guard status.member(id)?.role != .voter else { return }
        _ = try await request { token in qr_assign(node, token, id, Int32(QR_VOTER)) }
    }

    public func remove(id: UInt64) async throws(ConsensusError) {
        guard status.member(id) != nil else { return }
        _ = try await request { token in qr_remove(node, token, id) }
    }

    public func barrier() async throws(ConsensusError) {
        _ = try await request { token in qr_barrier(node, token) }
    }

    /// A leader commits a barrier once per term before its first proposal, so that everything
    /// committed by earlier leaders is applied here first (a libraft requirement).
    private func ensureBarrier() async throws(ConsensusError) {
        let current = status
        guard current.role == .leader, barrierTerm.load(ordering: .acquiring) != current.term else { return }
        try await barrier()
        barrierTerm.store(current.term, ordering: .releasing)
    }

    public func shutdown() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        qr_destroy(node)
        let leftovers = waiting.withLock { pending in
            defer { pending = [:] }
            return Array(pending.values)
        }
        for continuation in leftovers { continuation.resume(returning: .failure(.shutdown)) }
    }

    deinit {
        shutdown()
    }

    // MARK: Requests

    private func request(_ submit: (UInt64) -> Void) async throws(ConsensusError) -> UInt64 {
        if stopped.load(ordering: .acquiring) { throw .shutdown }
        let token = nextToken.add(1, ordering: .relaxed).newValue
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<UInt64, ConsensusError>, Never>) in
            waiting.withLock { $0[token] = continuation }
            submit(token)
        }
        return try result.get()
    }

    fileprivate func finish(token: UInt64, status code: Int32, index: UInt64) {
        guard let continuation = waiting.withLock({ $0.removeValue(forKey: token) }) else { return }
        continuation.resume(returning: code == 0 ? .success(index) : .failure(Self.error(code)))
    }

    private static func error(_ code: Int32) -> ConsensusError {
        switch code {
        case 7: .notLeader(nil)  // RAFT_NOTLEADER
        case 8: .leadershipLost  // RAFT_LEADERSHIPLOST
        case 9: .shutdown  // RAFT_SHUTDOWN
        case 11: .busy  // RAFT_CANTCHANGE
        default: .failed(code: code, message: String(cString: qr_strerror(code)))
        }
    }

    /// The C bridge's NUL-terminated error message.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Callbacks

    private static func trampolines(_ context: RaftEngineContext) -> qr_callbacks {
        var callbacks = qr_callbacks()
        callbacks.context = Unmanaged.passUnretained(context).toOpaque()
        callbacks.apply = { context, index, data, count in
            guard let engine = engine(context) else { return }
            let bytes = count == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: data, count: count))
            engine.machine.apply(index: index, entry: bytes)
        }
        callbacks.snapshot = { context, dataOut, countOut in
            guard let engine = engine(context) else { return 1 }
            let bytes = SnapshotFrame.seal(engine.machine.snapshot())
            guard let memory = malloc(max(bytes.count, 1)) else { return 1 }
            bytes.withUnsafeBytes { if let base = $0.baseAddress { memory.copyMemory(from: base, byteCount: bytes.count) } }
            dataOut!.pointee = memory
            countOut!.pointee = bytes.count
            return 0
        }
        callbacks.restore = { context, data, count in
            guard let engine = engine(context) else { return 1 }
            let bytes = count == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: data, count: count))
            do {
                try engine.machine.restore(SnapshotFrame.open(bytes))
                return 0
            } catch {
                engine.restoreFailure.withLock { $0 = "\(error)" }
                return 6  // RAFT_MALFORMED
            }
        }
        callbacks.connect = { context, peer, address, fd in
            guard let engine = engine(context) else {
                close(fd)
                return
            }
            engine.connector(peer, String(cString: address!), fd)
        }
        callbacks.completed = { context, token, status, index in
            engine(context)?.finish(token: token, status: status, index: index)
        }
        return callbacks
    }
}

/// A state machine snapshot as libraft keeps and sends it: a tag, the CRC-32C of the state, the
/// state. libraft checks its log entries but not its snapshots, so damage to a snapshot file (or
/// in transit) is found here rather than restored. Snapshots written before the tag existed are
/// the bare state and are read as such.
enum SnapshotFrame {
    static let tag: [UInt8] = Array("QVS1".utf8)

    struct Damaged: Error, CustomStringConvertible {
        var description: String { "its checksum does not match its contents" }
    }

    static func seal(_ state: [UInt8]) -> [UInt8] {
        var framed = tag
        framed.reserveCapacity(8 + state.count)
        let crc = state.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }
        withUnsafeBytes(of: crc.littleEndian) { framed.append(contentsOf: $0) }
        framed.append(contentsOf: state)
        return framed
    }

    static func open(_ framed: [UInt8]) throws -> [UInt8] {
        guard framed.starts(with: tag) else { return framed }
        guard framed.count >= 8 else { throw Damaged() }
        let stored = framed[4..<8].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        let state = Array(framed[8...])
        let crc = state.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }
        guard crc == stored else { throw Damaged() }
        return state
    }
}

private final class RaftEngineContext: @unchecked Sendable {
    weak var engine: RaftEngine?
}

private func engine(_ context: UnsafeMutableRawPointer?) -> RaftEngine? {
    guard let context else { return nil }
    return Unmanaged<RaftEngineContext>.fromOpaque(context).takeUnretainedValue().engine
}
