import GRPCCore
import QuiverJSON

/// The internal p2p service (`quiver.p2p.Peer`). It is spoken only between Quiver peers, so its
/// messages are Swift types carried as JSON (control calls) or raw bytes (raft streams, entries)
/// through grpc-swift's own serializer hooks; no protobuf schema is involved.
enum PeerRPC {
    static let service = "quiver.p2p.Peer"
    static let raftStream = MethodDescriptor(fullyQualifiedService: service, method: "RaftStream", type: .bidirectionalStreaming)
    static let propose = MethodDescriptor(fullyQualifiedService: service, method: "Propose", type: .unary)
    static let join = MethodDescriptor(fullyQualifiedService: service, method: "Join", type: .unary)
    static let removePeer = MethodDescriptor(fullyQualifiedService: service, method: "RemovePeer", type: .unary)
    static let whoIs = MethodDescriptor(fullyQualifiedService: service, method: "WhoIs", type: .unary)
    static let status = MethodDescriptor(fullyQualifiedService: service, method: "Status", type: .unary)
    static let waitCommit = MethodDescriptor(fullyQualifiedService: service, method: "WaitCommit", type: .unary)
    static let metadataSnapshot = MethodDescriptor(fullyQualifiedService: service, method: "MetadataSnapshot", type: .unary)
    static let quotaUsage = MethodDescriptor(fullyQualifiedService: service, method: "QuotaUsage", type: .unary)

    /// Request metadata naming the peer that opens a raft stream.
    static let peerIdKey = "quiver-peer-id"
    static let peerAddressKey = "quiver-peer-address"
}

struct JoinRequest: Codable, Sendable {
    var peerId: UInt64
    /// The joiner's own URI (`--uri`); when absent the receiver derives it from the connection.
    var uri: String?
    var p2pPort: Int
}

struct JoinResponse: Codable, Sendable {
    var uri: String
    var leader: UInt64
}

struct PeerIdMessage: Codable, Sendable {
    var peerId: UInt64
}

struct WhoIsResponse: Codable, Sendable {
    var uri: String?
}

struct IndexMessage: Codable, Sendable {
    var index: UInt64
}

struct StatusResponse: Codable, Sendable {
    var term: UInt64
    var commit: UInt64
    var applied: UInt64
    var leader: UInt64?
}

struct WaitCommitRequest: Codable, Sendable {
    var index: UInt64
    var timeoutMs: UInt64
}

struct Empty: Codable, Sendable {}

struct JSONCoder<Message: Codable & Sendable>: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        Bytes(try JSONValueEncoder().encodeBytes(message))
    }

    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Message {
        try bytes.withUnsafeBytes { try JSONValueDecoder().decode(Message.self, from: Array($0)) }
    }
}

struct RawCoder: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }

    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}
