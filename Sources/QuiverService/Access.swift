import Storage

/// What the credentials of the request being served allow:
/// - `manage`: everything (`service.api_key`, `service.alt_api_key`, a JWT with `"access": "m"`
///   or none, and calls Quiver makes itself: peers, start-up);
/// - `read`: every read (`service.read_only_api_key`, a JWT with `"access": "r"`);
/// - `collections`: a JWT's list of collections, each read (`r`), read-write (`rw`) or
///   read-write of points only (`prw`); names as the request gives them, aliases included.
///
/// The edges set it for the duration of a request; each operation states what it needs, as Qdrant
/// decides per operation and not per HTTP method (a search sent with POST is a read).
public enum Access: Sendable, Equatable {
    case manage
    case read
    case collections([String: CollectionAccess])

    public enum CollectionAccess: String, Sendable, Equatable {
        case read = "r"
        case readWrite = "rw"
        case pointsReadWrite = "prw"
    }

    @TaskLocal public static var current: Access = .manage

    /// An operation on the whole node or on every collection: `manage` when it changes anything.
    public static func requireGlobal(manage: Bool) throws(ServiceError) {
        switch current {
        case .manage: return
        case .read: if manage { throw forbidden("Global manage access is required") }
        case .collections: throw forbidden("Global access is required")
        }
    }

    /// An operation on `collection`: `write` when it changes points, `extras` when it reaches past
    /// points (snapshots, payload indexes, named vectors, cluster information), `manage` when it
    /// changes the collection's placement.
    public static func require(_ collection: String, write: Bool = false, extras: Bool = false, manage: Bool = false) throws(ServiceError) {
        switch current {
        case .manage: return
        case .read: if write || manage { throw forbidden("Global manage access is required") }
        case .collections(let list):
            guard let access = list[collection] else { throw forbidden("Access to collection \(collection) is required") }
            if extras && access == .pointsReadWrite { throw forbidden("Only points access is allowed for collection \(collection)") }
            if write && access == .read { throw forbidden("Write access to collection \(collection) is required") }
            if manage { throw forbidden("Manage access for this operation is required") }
        }
    }

    /// Whether lists show `collection` (or an alias of that name).
    public static func mayRead(_ collection: String) -> Bool {
        if case .collections(let list) = current { return list[collection] != nil }
        return true
    }

    private static func forbidden(_ description: String) -> ServiceError {
        .storage(.forbidden(description))
    }
}
