import Crypto
import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
@testable import QuiverService
import Storage
import Testing

/// API keys, JWTs, and what the access they grant allows.
struct AccessTests {
    let keys = APIKeys(apiKey: "manage", altApiKey: "rotated", readOnlyApiKey: "reader", jwtRBAC: true)
    let now: Int64 = 1_800_000_000

    private func access(_ apiKey: String?, _ authorization: String? = nil, keys: APIKeys? = nil) -> Result<Access, AuthRefusal> {
        (keys ?? self.keys).grant(apiKey: apiKey, authorization: authorization, now: now).map(\.access)
    }

    /// A token over `claims` (JSON), signed with `secret`.
    static func token(_ claims: String, secret: String = "manage", header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
        func base64URL(_ bytes: some Sequence<UInt8>) -> String {
            Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let signed = base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return signed + "." + base64URL(signature)
    }

    @Test func eachKeyGrantsItsAccess() {
        #expect(access("manage") == .success(.manage))
        #expect(access("rotated") == .success(.manage))
        #expect(access("reader") == .success(.read))
        #expect(access(nil, "Bearer manage") == .success(.manage))
        #expect(access(nil, "Bearer reader") == .success(.read))
    }

    @Test func refusalsSayWhy() {
        #expect(access(nil) == .failure(.missing))
        #expect(access(nil, "bearer manage") == .failure(.missing))
        #expect(access(nil, "manage") == .failure(.missing))
        #expect(access("wrong", "Bearer manage") == .failure(.invalid))
        #expect(access("") == .failure(.invalid))
        #expect(access("manag") == .failure(.invalid))
        #expect(access("manage ") == .failure(.invalid))
        #expect(AuthRefusal.missing.description == "Must provide an API key or an Authorization bearer token")
        #expect(AuthRefusal.invalid.description == "Invalid API key or JWT")
    }

    @Test func emptyKeysAreUnsetAndNoKeyMeansNoCheck() {
        let none = APIKeys(apiKey: "", altApiKey: nil, readOnlyApiKey: "")
        #expect(!none.enabled)
        #expect(access(nil, keys: none) == .success(.manage))
        let readerOnly = APIKeys(apiKey: nil, readOnlyApiKey: "reader")
        #expect(readerOnly.enabled)
        #expect(access("reader", keys: readerOnly) == .success(.read))
        #expect(access("", keys: readerOnly) == .failure(.invalid))
    }

    @Test func keysCompareByEveryByte() {
        #expect(APIKeys.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!APIKeys.equal(Array("abc".utf8), Array("abd".utf8)))
        #expect(!APIKeys.equal(Array("abc".utf8), Array("ab".utf8)))
        #expect(!APIKeys.equal([], [0]))
        #expect(APIKeys.equal([], []))
    }

    @Test func tokensGrantTheirAccess() {
        #expect(access(Self.token(#"{"access":"r"}"#)) == .success(.read))
        #expect(access(Self.token(#"{"access":"m","sub":"me"}"#)) == .success(.manage))
        #expect(access(Self.token(#"{"exp":1800000000}"#)) == .success(.manage))  // no access claim: everything
        #expect(access(nil, "Bearer " + Self.token(#"{"access":[{"collection":"a","access":"r"},{"collection":"b","access":"prw"}]}"#))
                == .success(.collections(["a": .read, "b": .pointsReadWrite])))
        #expect(access(Self.token(#"{"access":"r"}"#, secret: "rotated")) == .success(.read))  // the second key signs too
        #expect(access(Self.token(#"{"access":"r","exp":1799999971}"#)) == .success(.read))  // 29 s late: within the leeway
    }

    @Test func tokensAreRefusedAsQdrantRefusesThem() {
        #expect(access(Self.token(#"{"access":"r"}"#, secret: "reader")) == .failure(.forbidden("InvalidSignature")))
        #expect(access(Self.token(#"{"access":"r","exp":1799999969}"#)) == .failure(.forbidden("ExpiredSignature")))
        #expect(access(Self.token(#"{"access":[{"collection":"a","access":"r","payload":{}}]}"#))
                == .failure(.unauthorized("access[0].payload: The 'payload' constraint is deprecated and should not be used")))
        #expect(access(Self.token(#"{"access":[{"collection":"a","access":"r"},{"collection":"a","access":"rw"}]}"#))
                == .failure(.unauthorized("access[1].collection: Collection name should be unique")))
        for claims in [#"{"access":"w"}"#, #"{"exp":1.5}"#, #"{"access":[{"collection":"a","access":"m"}]}"#, #"{"sub":1}"#, "[]"] {
            #expect(access(Self.token(claims)) == .failure(.invalid), "\(claims)")
        }
        #expect(access(Self.token(#"{"access":"r"}"#, header: #"{"alg":"HS512"}"#)) == .failure(.invalid))
        #expect(access(Self.token(#"{"access":"r"}"#, header: #"{"alg":"none"}"#)) == .failure(.invalid))
        #expect(access("a.b.c") == .failure(.invalid))
        // Without jwt_rbac a token is just a wrong key.
        #expect(access(Self.token(#"{"access":"r"}"#), keys: APIKeys(apiKey: "manage")) == .failure(.invalid))
    }

    @Test func eachAccessAllowsWhatQdrantAllows() throws {
        let forbidden = { (text: String) in ServiceError.storage(.forbidden(text)) }
        let tokens: Access = .collections(["r": .read, "rw": .readWrite, "prw": .pointsReadWrite])
        try Access.$current.withValue(.manage) {
            try Access.requireGlobal(manage: true)
            try Access.require("any", write: true, extras: true, manage: true)
        }
        Access.$current.withValue(.read) {
            #expect(throws: forbidden("Global manage access is required")) { try Access.requireGlobal(manage: true) }
            #expect(throws: forbidden("Global manage access is required")) { try Access.require("c", write: true) }
            #expect(throws: Never.self) { try Access.requireGlobal(manage: false) }
            #expect(throws: Never.self) { try Access.require("c", extras: true) }
        }
        Access.$current.withValue(tokens) {
            #expect(throws: forbidden("Global access is required")) { try Access.requireGlobal(manage: false) }
            #expect(throws: forbidden("Access to collection c is required")) { try Access.require("c") }
            #expect(throws: forbidden("Write access to collection r is required")) { try Access.require("r", write: true) }
            #expect(throws: forbidden("Only points access is allowed for collection prw")) { try Access.require("prw", extras: true) }
            #expect(throws: forbidden("Manage access for this operation is required")) { try Access.require("rw", write: true, extras: true, manage: true) }
            #expect(throws: Never.self) { try Access.require("prw", write: true) }
            #expect(throws: Never.self) { try Access.require("rw", write: true, extras: true) }
            #expect(throws: Never.self) { try Access.require("r") }
            #expect(Access.mayRead("r") && !Access.mayRead("c"))
        }
    }

    @Test func readAccessMayReadButNotChangeAnything() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        _ = try await service.createCollection("c", try create(#"{"vectors": {"size": 2, "distance": "Dot"}}"#))
        _ = try await service.createCollection("d", try create(#"{"vectors": {"size": 2, "distance": "Dot"}}"#))
        try await Access.$current.withValue(.read) {
            #expect(await service.listCollections().collections.map(\.name).sorted() == ["c", "d"])
            await #expect(throws: ServiceError.storage(.forbidden("Global manage access is required"))) {
                try await service.deleteCollection("c")
            }
        }
        try await Access.$current.withValue(.collections(["d": .read])) {
            #expect(await service.listCollections().collections.map(\.name) == ["d"])
            _ = try await service.getCollection("d")
            await #expect(throws: ServiceError.storage(.forbidden("Access to collection c is required"))) {
                try await service.getCollection("c")
            }
        }
        #expect(await service.listCollections().collections.count == 2)
    }

    @Test func aTokenWithValueExistsHoldsWhileAPointMatches() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        _ = try await service.createCollection("users", try create(#"{"vectors": {"size": 2, "distance": "Dot"}}"#))
        let upsert = try PointsJSON.upsert(try JSONParser.parse(#"{"points": [{"id": 1, "vector": [1, 0], "payload": {"user": "ann", "n": 3}}]}"#))
        _ = try await service.update("users", upsert, wait: true)
        let token = { (matches: String, collection: String) in
            Self.token(#"{"access":"r","value_exists":{"collection":"\#(collection)","matches":\#(matches)}}"#)
        }
        #expect(await service.authenticate(keys, apiKey: token(#"[{"key":"user","value":"ann"},{"key":"n","value":3}]"#, "users"), authorization: nil)
                == .success(.read))
        #expect(await service.authenticate(keys, apiKey: token(#"[{"key":"user","value":"bob"}]"#, "users"), authorization: nil)
                == .failure(.unauthorized("Invalid JWT, stateful validation failed")))
        #expect(await service.authenticate(keys, apiKey: token(#"[{"key":"user","value":"ann"}]"#, "nope"), authorization: nil)
                == .failure(.forbidden("Invalid JWT, stateful validation failed")))
    }
}
