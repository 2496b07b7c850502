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

    public var description: String {
        switch self {
        case .badInput(let d), .alreadyExists(let d): "Wrong input: \(d)"
        case .notFound(let d): "Not found: \(d)"
        case .badRequest(let d): "Bad request: \(d)"
        case .serviceError(let d): "Service internal error: \(d)"
        case .standaloneMode: "Quiver is running in standalone mode (cluster.enabled is false)"
        case .unavailable(let d): "Service unavailable: \(d)"
        }
    }

    static func collectionNotFound(_ name: String) -> StorageError {
        .notFound("Collection `\(name)` doesn't exist!")
    }

    static func collectionExists(_ name: String) -> StorageError {
        .alreadyExists("Collection `\(name)` already exists!")
    }
}
