/// `GET /cluster` (Qdrant's `ClusterStatus`): `{"status":"disabled"}` on a single node.
public enum ClusterStatus: Encodable, Sendable, Equatable {
    case disabled
    case enabled(ClusterDescription)

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .disabled:
            var container = encoder.container(keyedBy: DisabledKeys.self)
            try container.encode("disabled", forKey: .status)
        case .enabled(let description):
            try description.encode(to: encoder)
        }
    }

    enum DisabledKeys: String, CodingKey { case status }
}

public struct ClusterDescription: Encodable, Sendable, Equatable {
    public var peerId: UInt64
    public var peers: [String: PeerInfo]
    public var raftInfo: RaftInfo
    public var consensusThreadStatus: ConsensusThreadStatus
    public var messageSendFailures: [String: MessageSendErrors]

    public init(peerId: UInt64, peers: [String: PeerInfo], raftInfo: RaftInfo, consensusThreadStatus: ConsensusThreadStatus,
                messageSendFailures: [String: MessageSendErrors]) {
        self.peerId = peerId
        self.peers = peers
        self.raftInfo = raftInfo
        self.consensusThreadStatus = consensusThreadStatus
        self.messageSendFailures = messageSendFailures
    }

    enum CodingKeys: String, CodingKey {
        case status, peerId = "peer_id", peers, raftInfo = "raft_info", consensusThreadStatus = "consensus_thread_status"
        case messageSendFailures = "message_send_failures"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("enabled", forKey: .status)
        try container.encode(peerId, forKey: .peerId)
        try container.encode(peers, forKey: .peers)
        try container.encode(raftInfo, forKey: .raftInfo)
        try container.encode(consensusThreadStatus, forKey: .consensusThreadStatus)
        try container.encode(messageSendFailures, forKey: .messageSendFailures)
    }
}

public struct PeerInfo: Encodable, Sendable, Equatable {
    public var uri: String
    public init(uri: String) { self.uri = uri }
}

public struct RaftInfo: Encodable, Sendable, Equatable {
    public var term: UInt64
    public var commit: UInt64
    public var pendingOperations: UInt64
    public var leader: UInt64?
    /// `Leader`, `Follower`, `Candidate`; absent while the engine is not running.
    public var role: String?
    public var isVoter: Bool

    public init(term: UInt64, commit: UInt64, pendingOperations: UInt64, leader: UInt64?, role: String?, isVoter: Bool) {
        self.term = term
        self.commit = commit
        self.pendingOperations = pendingOperations
        self.leader = leader
        self.role = role
        self.isVoter = isVoter
    }

    enum CodingKeys: String, CodingKey {
        case term, commit, pendingOperations = "pending_operations", leader, role, isVoter = "is_voter"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(term, forKey: .term)
        try container.encode(commit, forKey: .commit)
        try container.encode(pendingOperations, forKey: .pendingOperations)
        try container.encode(leader, forKey: .leader)
        try container.encode(role, forKey: .role)
        try container.encode(isVoter, forKey: .isVoter)
    }
}

/// Whether the consensus thread runs; `last_update` is an RFC 3339 time.
public enum ConsensusThreadStatus: Encodable, Sendable, Equatable {
    case working(lastUpdate: String)
    case stopped

    enum CodingKeys: String, CodingKey { case consensusThreadStatus = "consensus_thread_status", lastUpdate = "last_update" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .working(let lastUpdate):
            try container.encode("working", forKey: .consensusThreadStatus)
            try container.encode(lastUpdate, forKey: .lastUpdate)
        case .stopped:
            try container.encode("stopped", forKey: .consensusThreadStatus)
        }
    }
}

public struct MessageSendErrors: Encodable, Sendable, Equatable {
    public var count: Int
    public var latestError: String?
    public var latestErrorTimestamp: String?

    public init(count: Int, latestError: String?, latestErrorTimestamp: String?) {
        self.count = count
        self.latestError = latestError
        self.latestErrorTimestamp = latestErrorTimestamp
    }

    enum CodingKeys: String, CodingKey {
        case count, latestError = "latest_error", latestErrorTimestamp = "latest_error_timestamp"
    }
}
