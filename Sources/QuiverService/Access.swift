import Storage

/// What the credentials of the request being served allow: `manage` (`service.api_key`,
/// `service.alt_api_key`, and calls made by Quiver itself: peers, start-up) or `read`
/// (`service.read_only_api_key`). The edges set it for the duration of a request; an operation
/// that changes data or configuration checks it (`requireManage`), as Qdrant decides per
/// operation, not per HTTP method: a search sent with POST is a read.
public enum Access: Sendable, Equatable {
    case manage
    case read

    @TaskLocal public static var current: Access = .manage

    /// Qdrant's 403 for a write or a change of configuration without manage access.
    public static func requireManage() throws(ServiceError) {
        if current != .manage { throw .storage(.forbidden("Global manage access is required")) }
    }
}

/// The keys of `service.api_key`, `service.alt_api_key` (a second manage key, to rotate keys
/// without downtime) and `service.read_only_api_key`. Empty keys count as unset; with no key set,
/// every request may do everything.
public struct APIKeys: Sendable {
    private let manage: [[UInt8]]
    private let read: [UInt8]?

    public init(apiKey: String?, altApiKey: String? = nil, readOnlyApiKey: String? = nil) {
        manage = [apiKey, altApiKey].compactMap { $0 }.filter { !$0.isEmpty }.map { Array($0.utf8) }
        read = readOnlyApiKey.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    public var enabled: Bool { !manage.isEmpty || read != nil }

    /// Why a request is refused (401), in Qdrant's words.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case missing
        case invalid

        public var description: String {
            switch self {
            case .missing: "Must provide an API key or an Authorization bearer token"
            case .invalid: "Invalid API key or JWT"
            }
        }
    }

    /// The access a request's credential grants: the `api-key` header's value when there is one
    /// (even a wrong one), else the token of an `authorization: Bearer …` header. Keys are compared
    /// in time that does not depend on where they differ.
    public func access(apiKey: String?, authorization: String?) -> Result<Access, Refusal> {
        guard enabled else { return .success(.manage) }
        guard let key = apiKey ?? authorization.flatMap({ $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }) else {
            return .failure(.missing)
        }
        let presented = Array(key.utf8)
        var isManage = false
        for candidate in manage where Self.equal(presented, candidate) { isManage = true }
        if isManage { return .success(.manage) }
        if let read, Self.equal(presented, read) { return .success(.read) }
        return .failure(.invalid)
    }

    /// Byte equality that reads every byte of the longer input whatever the contents.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
