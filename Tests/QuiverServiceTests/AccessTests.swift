import DiskIO
import Foundation
import QuiverModel
@testable import QuiverService
import Storage
import Testing

/// API keys and the access they grant.
struct AccessTests {
    let keys = APIKeys(apiKey: "manage", altApiKey: "rotated", readOnlyApiKey: "reader")

    @Test func eachKeyGrantsItsAccess() {
        #expect(keys.access(apiKey: "manage", authorization: nil) == .success(.manage))
        #expect(keys.access(apiKey: "rotated", authorization: nil) == .success(.manage))
        #expect(keys.access(apiKey: "reader", authorization: nil) == .success(.read))
        #expect(keys.access(apiKey: nil, authorization: "Bearer manage") == .success(.manage))
        #expect(keys.access(apiKey: nil, authorization: "Bearer reader") == .success(.read))
    }

    @Test func refusalsSayWhy() {
        #expect(keys.access(apiKey: nil, authorization: nil) == .failure(.missing))
        #expect(keys.access(apiKey: nil, authorization: "bearer manage") == .failure(.missing))
        #expect(keys.access(apiKey: nil, authorization: "manage") == .failure(.missing))
        #expect(keys.access(apiKey: "wrong", authorization: "Bearer manage") == .failure(.invalid))
        #expect(keys.access(apiKey: "", authorization: nil) == .failure(.invalid))
        #expect(keys.access(apiKey: "manag", authorization: nil) == .failure(.invalid))
        #expect(keys.access(apiKey: "manage ", authorization: nil) == .failure(.invalid))
        #expect(APIKeys.Refusal.missing.description == "Must provide an API key or an Authorization bearer token")
        #expect(APIKeys.Refusal.invalid.description == "Invalid API key or JWT")
    }

    @Test func emptyKeysAreUnsetAndNoKeyMeansNoCheck() {
        let none = APIKeys(apiKey: "", altApiKey: nil, readOnlyApiKey: "")
        #expect(!none.enabled)
        #expect(none.access(apiKey: nil, authorization: nil) == .success(.manage))
        let readerOnly = APIKeys(apiKey: nil, readOnlyApiKey: "reader")
        #expect(readerOnly.enabled)
        #expect(readerOnly.access(apiKey: "reader", authorization: nil) == .success(.read))
        #expect(readerOnly.access(apiKey: "", authorization: nil) == .failure(.invalid))
    }

    @Test func keysCompareByEveryByte() {
        #expect(APIKeys.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!APIKeys.equal(Array("abc".utf8), Array("abd".utf8)))
        #expect(!APIKeys.equal(Array("abc".utf8), Array("ab".utf8)))
        #expect(!APIKeys.equal([], [0]))
        #expect(APIKeys.equal([], []))
    }

    @Test func readAccessMayReadButNotChangeAnything() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        _ = try await service.createCollection("c", try create(#"{"vectors": {"size": 2, "distance": "Dot"}}"#))
        try await Access.$current.withValue(.read) {
            #expect(await service.listCollections().collections.map(\.name) == ["c"])
            await #expect(throws: ServiceError.storage(.forbidden("Global manage access is required"))) {
                try await service.deleteCollection("c")
            }
            await #expect(throws: ServiceError.storage(.forbidden("Global manage access is required"))) {
                try await service.createCollection("d", try create(#"{"vectors": {"size": 2, "distance": "Dot"}}"#))
            }
        }
        #expect(await service.listCollections().collections.map(\.name) == ["c"])
        #expect(try await service.deleteCollection("c"))
    }
}
