import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
import QuiverService
import Storage
import Testing

func makeService() async throws -> (QuiverService, String) {
    let path = NSTemporaryDirectory() + "quiver-svc-\(UUID().uuidString)"
    let toc = TableOfContent(storagePath: path, disk: PosixDisk(), logger: Logger(label: "test"))
    try await toc.load()
    return (try await QuiverService.standalone(toc: toc, disk: PosixDisk(), logger: Logger(label: "test")), path)
}

func create(_ json: String) throws -> CreateCollection {
    try JSONValueDecoder().decode(CreateCollection.self, from: Array(json.utf8))
}

@Suite struct QuiverServiceTests {
    @Test func createGetListDelete() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        #expect(try await service.createCollection("c", create(#"{"vectors":{"size":2,"distance":"Dot"}}"#)))
        #expect(await service.listCollections() == CollectionsResponse(collections: [CollectionDescription(name: "c")]))
        #expect(await service.collectionExists("c").exists)
        #expect(try await service.getCollection("c").status == .green)
        #expect(try await service.deleteCollection("c"))
        #expect(try await service.deleteCollection("c") == false)
        #expect(await service.collectionExists("c").exists == false)
    }

    @Test func badNameIsAPathValidationError() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        let body = try create("{}")
        do {
            _ = try await service.createCollection("a:b", body)
            Issue.record("expected an error")
        } catch let error as ServiceError {
            guard case .validation(_, .path) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(error.description == #"Validation error in path parameters: [collection_name: collection name cannot contain ":" char]"#)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func bodyRulesAreValidationErrors() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        await #expect(throws: ServiceError.self) {
            _ = try await service.createCollection("c", create(#"{"vectors":{"size":0,"distance":"Dot"}}"#))
        }
        #expect(await service.collectionExists("c").exists == false)
    }

    @Test func missingCollectionIsNotFound() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        await #expect(throws: ServiceError.storage(.notFound("Collection `nope` doesn't exist!"))) {
            _ = try await service.getCollection("nope")
        }
        await #expect(throws: ServiceError.self) { _ = try await service.collectionAliases("nope") }
        await #expect(throws: ServiceError.self) { _ = try await service.updateCollection("nope", UpdateCollection()) }
    }

    @Test func errorDescriptionsUseQdrantWording() {
        #expect(ServiceError.storage(.alreadyExists("Collection `x` already exists!")).description == "Wrong input: Collection `x` already exists!")
        #expect(ServiceError.format("missing field `size`", .body).description == "Format error in JSON body: missing field `size`")
        #expect(ServiceError.payloadTooLarge(limitBytes: 10).description.contains("10 bytes"))
    }
}
