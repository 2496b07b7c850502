import Crypto
import Foundation
import QuiverJSON
import QuiverModel
import Storage

/// Why a request's credential is refused, in Qdrant's words: a 401 (gRPC `UNAUTHENTICATED`) or a
/// 403 (`PERMISSION_DENIED`).
public enum AuthRefusal: Error, Equatable, CustomStringConvertible {
    case unauthorized(String)
    case forbidden(String)

    public static let missing = AuthRefusal.unauthorized("Must provide an API key or an Authorization bearer token")
    public static let invalid = AuthRefusal.unauthorized("Invalid API key or JWT")
    static let statefulValidation = "Invalid JWT, stateful validation failed"

    public var description: String {
        switch self {
        case .unauthorized(let message), .forbidden(let message): message
        }
    }
}

/// The credentials a node accepts: `service.api_key` and `service.alt_api_key` (manage; the second
/// to rotate keys without downtime), `service.read_only_api_key` (read), and with
/// `service.jwt_rbac` the JWTs (HS256) signed with either manage key. Empty keys count as unset;
/// with no key set, every request may do everything.
public struct APIKeys: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Says how many keys there are, never what they are: configurations get logged.
    public var description: String { "APIKeys(manage: \(manage.count), read-only: \(read == nil ? 0 : 1), jwt: \(!jwtSecrets.isEmpty))" }
    public var debugDescription: String { description }

    private let manage: [[UInt8]]
    private let read: [UInt8]?
    private let jwtSecrets: [[UInt8]]

    public init(apiKey: String?, altApiKey: String? = nil, readOnlyApiKey: String? = nil, jwtRBAC: Bool = false) {
        manage = [apiKey, altApiKey].compactMap { $0 }.filter { !$0.isEmpty }.map { Array($0.utf8) }
        read = readOnlyApiKey.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        jwtSecrets = jwtRBAC ? manage : []
    }

    public var enabled: Bool { !manage.isEmpty || read != nil }

    /// What a request's credential grants, as far as it can be told without a lookup: the
    /// `api-key` header's value when there is one (even a wrong one), else the token of an
    /// `authorization: Bearer …` header; a manage key, the read key, then a JWT. Keys are compared
    /// in time that does not depend on where they differ.
    public func grant(apiKey: String?, authorization: String?, now: Int64 = Int64(Date().timeIntervalSince1970)) -> Result<Grant, AuthRefusal> {
        guard enabled else { return .success(Grant(access: .manage)) }
        guard let key = apiKey ?? authorization.flatMap({ $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }) else {
            return .failure(.missing)
        }
        let presented = Array(key.utf8)
        var isManage = false
        for candidate in manage where Self.equal(presented, candidate) { isManage = true }
        if isManage { return .success(Grant(access: .manage)) }
        if let read, Self.equal(presented, read) { return .success(Grant(access: .read)) }
        if !jwtSecrets.isEmpty, let decoded = JWT.decode(key, secrets: jwtSecrets, now: now) { return decoded }
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

/// JSON Web Tokens as Qdrant reads them: HS256 only, `exp` optional and checked with 30 seconds
/// of leeway, `access` (`"r"`, `"m"`, or a list of `{collection, access: r|rw|prw}`; absent: manage),
/// `value_exists` (`{collection, matches: [{key, value}]}`: valid only while a point matches).
/// What a credential grants: its access, valid (for a token with `value_exists`) only while a
/// point matches (`QuiverService.access(for:)` checks).
public struct Grant: Sendable, Equatable {
    public var access: Access
    var valueExists: JWT.ValueExists?
}

enum JWT {
    struct ValueExists: Sendable, Equatable {
        var collection: String
        var matches: [JSONValue]  // `{key, value}` objects
    }

    static let leewaySeconds: Int64 = 30

    /// nil when `token` is not a JWT signed with HS256 whose claims read (Qdrant then answers
    /// "Invalid API key or JWT"); otherwise its claims or the 401/403 for it.
    static func decode(_ token: String, secrets: [[UInt8]], now: Int64) -> Result<Grant, AuthRefusal>? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = base64URL(parts[0]), let signature = base64URL(parts[2]),
              case .object(let header)? = try? JSONParser.parse(headerBytes), header["alg"] == "HS256" else { return nil }
        let signed = Array("\(parts[0]).\(parts[1])".utf8)
        guard secrets.contains(where: { secret in
            HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: SymmetricKey(data: secret))
        }) else { return .failure(.forbidden("InvalidSignature")) }
        guard let payloadBytes = base64URL(parts[1]), case .object(let payload)? = try? JSONParser.parse(payloadBytes) else { return nil }
        guard let claims = readClaims(payload) else { return nil }
        if case .failure(let refusal) = claims { return .failure(refusal) }
        if let exp = payload["exp"] {
            guard case .int(let seconds) = exp, seconds >= 0 else { return nil }
            if seconds < now - leewaySeconds { return .failure(.forbidden("ExpiredSignature")) }
        }
        return claims
    }

    /// The claims, nil when they do not read (a wrong type), or the 401 of a rule they break.
    private static func readClaims(_ payload: JSONObject) -> Result<Grant, AuthRefusal>? {
        for key in ["sub", "subject"] {
            if let value = payload[key], value != .null, value.stringValue == nil { return nil }
        }
        var claims = Grant(access: .manage)
        switch payload["access"] {
        case nil, .null?: break
        case .string("r")?: claims.access = .read
        case .string("m")?: claims.access = .manage
        case .array(let entries)?:
            var list: [String: Access.CollectionAccess] = [:]
            for (i, entry) in entries.enumerated() {
                guard case .object(let object) = entry, let collection = object["collection"]?.stringValue,
                      let mode = object["access"]?.stringValue.flatMap(Access.CollectionAccess.init(rawValue:)) else { return nil }
                if object["payload"] != nil {
                    return .failure(.unauthorized("access[\(i)].payload: The 'payload' constraint is deprecated and should not be used"))
                }
                if list[collection] != nil { return .failure(.unauthorized("access[\(i)].collection: Collection name should be unique")) }
                list[collection] = mode
            }
            claims.access = .collections(list)
        default: return nil
        }
        if let value = payload["value_exists"], value != .null {
            guard case .object(let object) = value, let collection = object["collection"]?.stringValue,
                  case .array(let matches)? = object["matches"] else { return nil }
            for match in matches {
                guard case .object(let pair) = match, pair["key"]?.stringValue != nil else { return nil }
                switch pair["value"] {
                case .string?, .int?, .bool?: break
                default: return nil
                }
            }
            claims.valueExists = ValueExists(collection: collection, matches: matches)
        }
        return .success(claims)
    }

    private static func base64URL(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map { Array($0) }
    }
}

extension QuiverService {
    /// The access a request's credentials grant (see `APIKeys.grant`), or why they are refused.
    public func authenticate(_ keys: APIKeys, apiKey: String?, authorization: String?) async -> Result<Access, AuthRefusal> {
        switch keys.grant(apiKey: apiKey, authorization: authorization) {
        case .success(let grant): await access(for: grant)
        case .failure(let refusal): .failure(refusal)
        }
    }

    /// The grant's access, once its `value_exists` holds: a point of the collection matches every
    /// pair (a one-point scroll, made with manage access).
    public func access(for grant: Grant) async -> Result<Access, AuthRefusal> {
        guard let check = grant.valueExists else { return .success(grant.access) }
        let body: JSONValue = ["filter": ["must": .array(check.matches.map { match in
            ["key": match["key"] ?? .null, "match": ["value": match["value"] ?? .null]]
        })], "limit": 1, "with_payload": false, "with_vector": false]
        do {
            let request = try PointsJSON.scrollRequest(body)
            let page = try await Access.$current.withValue(.manage) { () async throws(ServiceError) in
                try await scroll(check.collection, request)
            }
            return page.records.isEmpty ? .failure(.unauthorized(AuthRefusal.statefulValidation)) : .success(grant.access)
        } catch let error as ServiceError {
            if case .storage(let storage) = error, case StorageError.notFound = storage {
                return .failure(.forbidden(AuthRefusal.statefulValidation))
            }
            return .failure(.forbidden(error.description))
        } catch {
            return .failure(.unauthorized(AuthRefusal.statefulValidation))
        }
    }
}
