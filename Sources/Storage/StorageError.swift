import DiskIO
import Shard

/// Errors of the storage layer. Each case says whose fault it is; the edges map them to HTTP and
/// gRPC status codes in one place each.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request is well-formed but cannot apply (400).
    case badInput(String)
    /// The thing to create exists already (409).
    case alreadyExists(String)
    /// The thing addressed does not exist (404).
    case notFound(String)
    /// The request is not allowed in the node's current state or configuration (400).
    case badRequest(String)
    /// Our fault: IO failure, corrupt state (500).
    case serviceError(String)
    /// A cluster operation on a single node (405, as Qdrant's standalone mode).
    case standaloneMode
    /// The cluster cannot take the change now: no leader, no quorum, or no answer in time (503).
    case unavailable(String)
    /// The request's `timeout` passed before it was answered (408).
    case timeout(String)
    /// The request is not allowed to do this (403).
    case forbidden(String)
    /// Strict mode's read or write rate limit is used up (429); `retryAfter` in whole seconds, nil
    /// when the request can never pass.
    case rateLimited(String, retryAfter: Int?)
    /// The storage's disk is (nearly) full: writes that add data are refused until space is freed
    /// (507, as Qdrant's quota refusals).
    case insufficientStorage(String)

    public var description: String {
        switch self {
        case .badInput(let d), .alreadyExists(let d): "Wrong input: \(d)"
        case .notFound(let d): "Not found: \(d)"
        case .badRequest(let d): "Bad request: \(d)"
        case .serviceError(let d): "Service internal error: \(d)"
        case .standaloneMode: "Quiver is running in standalone mode (cluster.enabled is false)"
        case .unavailable(let d): "Service unavailable: \(d)"
        case .timeout(let d): "Timeout error: \(d)"
        case .rateLimited(let d, _): "Rate limiting exceeded: \(d)"
        case .forbidden(let d): "Forbidden: \(d)"
        case .insufficientStorage(let d): "Insufficient storage: \(d)"
        }
    }

    /// A failed write as an error of this layer: `insufficientStorage` when the disk was full (the
    /// caller can make room and retry), else `serviceError`.
    static func writeFailed(_ message: String, _ error: any Error) -> StorageError {
        let full = (error as? DiskError)?.isOutOfSpace ?? (error as? ShardError)?.isOutOfSpace ?? false
        return full ? .insufficientStorage("\(message): \(error)") : .serviceError("\(message): \(error)")
    }

    /// The peer asked did not answer (as opposed to answering with an error or running out of the
    /// request's time).
    public var isUnreachable: Bool {
        if case .unavailable = self { true } else { false }
    }

    /// A replica's failure to answer a read that another replica may not share (unreachable, an
    /// error on its side, out of time), as its message; nil for errors every replica would give.
    /// A peer's answer that it holds no replica of shard `id` (it moved away, or the sender's view
    /// is newer than the peer's).
    static func shardNotHere(_ id: UInt32, collection: String, peer: UInt64) -> StorageError {
        .notFound("Shard \(id) of collection `\(collection)` is not on peer \(peer)")
    }

    /// Whether this is a ``shardNotHere(_:collection:peer:)`` answer.
    var isShardNotHere: Bool {
        if case .notFound(let message) = self { message.hasPrefix("Shard ") && message.contains(" is not on peer ") } else { false }
    }

    public var replicaFailure: String? {
        switch self {
        case .unavailable(let message), .serviceError(let message), .insufficientStorage(let message): message
        case .timeout: description
        default: nil
        }
    }

    /// The same error with `text` before its message.
    public func prefixed(_ text: String) -> StorageError {
        switch self {
        case .badInput(let m): .badInput(text + m)
        case .alreadyExists(let m): .alreadyExists(text + m)
        case .notFound(let m): .notFound(text + m)
        case .badRequest(let m): .badRequest(text + m)
        case .serviceError(let m): .serviceError(text + m)
        case .standaloneMode: self
        case .unavailable(let m): .unavailable(text + m)
        case .timeout(let m): .timeout(text + m)
        case .rateLimited(let m, let after): .rateLimited(text + m, retryAfter: after)
        case .forbidden(let m): .forbidden(text + m)
        case .insufficientStorage(let m): .insufficientStorage(text + m)
        }
    }

    static func collectionNotFound(_ name: String) -> StorageError {
        .notFound("Collection `\(name)` doesn't exist!")
    }

    static func collectionExists(_ name: String) -> StorageError {
        .alreadyExists("Collection `\(name)` already exists!")
    }
}
