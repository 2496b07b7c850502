/// Consensus over cluster metadata (DESIGN.md §3): an ordered, replicated log of opaque entries.
///
/// The engine knows nothing about collections. It hands committed entries, in log order, to a
/// ``ConsensusStateMachine``, takes and installs snapshots of that machine, and changes the set of
/// members. ``RaftEngine`` (libraft) runs a cluster's; ``LocalConsensus`` runs a single node's
/// with one member, and the in-process tests of the layers above.
public protocol ConsensusEngine: AnyObject, Sendable {
    /// A consistent view of the engine's current state.
    var status: ConsensusStatus { get }

    /// Appends `entry` to the log. Returns its log index once it is committed and applied on this
    /// peer. Throws ``ConsensusError/notLeader(_:)`` on a follower: proposals go to the leader.
    func propose(_ entry: [UInt8]) async throws(ConsensusError) -> UInt64

    /// Adds a member that receives the log but does not vote (a learner).
    func addLearner(id: UInt64, address: String) async throws(ConsensusError)

    /// Makes a learner a voter once it has caught up with the log.
    func promote(id: UInt64) async throws(ConsensusError)

    /// Removes a member.
    func remove(id: UInt64) async throws(ConsensusError)

    /// Commits an empty entry: once it returns, every entry of earlier terms is applied here.
    func barrier() async throws(ConsensusError)

    /// Stops the engine; pending requests fail with ``ConsensusError/shutdown``.
    func shutdown()
}

/// What the engine drives. Every method is called on the engine's own thread, one at a time, and
/// must return promptly.
public protocol ConsensusStateMachine: AnyObject, Sendable {
    /// A committed entry, in log order.
    func apply(index: UInt64, entry: [UInt8])
    /// The whole state, as of the last applied entry.
    func snapshot() -> [UInt8]
    /// Replaces the whole state with a snapshot taken by ``snapshot()`` (on this peer or another).
    func restore(_ snapshot: [UInt8]) throws
}

public enum ConsensusRole: String, Sendable, Equatable {
    case follower = "Follower"
    case candidate = "Candidate"
    case leader = "Leader"
    /// Not started, or stopped.
    case unavailable = "Unavailable"
}

public enum MemberRole: String, Sendable, Equatable {
    case voter, learner, spare
}

public struct ConsensusMember: Sendable, Equatable {
    public var id: UInt64
    public var address: String
    public var role: MemberRole

    public init(id: UInt64, address: String, role: MemberRole) {
        self.id = id
        self.address = address
        self.role = role
    }
}

public struct ConsensusStatus: Sendable, Equatable {
    public var peerId: UInt64
    public var role: ConsensusRole
    public var leader: UInt64?
    public var term: UInt64
    /// Highest index known to be committed.
    public var commit: UInt64
    /// Highest index applied to the state machine on this peer.
    public var applied: UInt64
    /// Last index in this peer's log.
    public var lastIndex: UInt64
    /// Index of the last snapshot taken or installed (0 if none).
    public var snapshotIndex: UInt64
    public var members: [ConsensusMember]
    /// Grows while the engine's thread is alive.
    public var heartbeat: UInt64
    public var stopped: Bool

    public init(peerId: UInt64, role: ConsensusRole, leader: UInt64?, term: UInt64, commit: UInt64, applied: UInt64,
                lastIndex: UInt64, snapshotIndex: UInt64, members: [ConsensusMember], heartbeat: UInt64, stopped: Bool) {
        self.peerId = peerId
        self.role = role
        self.leader = leader
        self.term = term
        self.commit = commit
        self.applied = applied
        self.lastIndex = lastIndex
        self.snapshotIndex = snapshotIndex
        self.members = members
        self.heartbeat = heartbeat
        self.stopped = stopped
    }

    public var isVoter: Bool { members.contains { $0.id == peerId && $0.role == .voter } }

    /// Entries committed but not yet applied here.
    public var pendingOperations: UInt64 { commit > applied ? commit - applied : 0 }

    public func member(_ id: UInt64) -> ConsensusMember? { members.first { $0.id == id } }

    /// Where to reach the leader, if this peer knows one.
    public var leaderAddress: String? { leader.flatMap { member($0)?.address } }
}

public enum ConsensusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// This peer is not the leader; `leader` is the one it knows of, if any.
    case notLeader(UInt64?)
    /// The engine stopped.
    case shutdown
    /// A membership change is already in progress.
    case busy
    /// Leadership was lost before the entry was committed: it may or may not have been applied.
    case leadershipLost
    case failed(code: Int32, message: String)

    public var description: String {
        switch self {
        case .notLeader(let leader):
            leader.map { "this peer is not the consensus leader (the leader is peer \($0))" }
                ?? "there is no consensus leader at the moment (no quorum)"
        case .shutdown: "the consensus engine is shut down"
        case .busy: "another membership change is in progress"
        case .leadershipLost: "the consensus leader changed before the operation was committed"
        case .failed(let code, let message): "consensus error \(code): \(message)"
        }
    }
}
