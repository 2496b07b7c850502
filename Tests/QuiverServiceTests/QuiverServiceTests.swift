import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
@testable import QuiverService
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
        #expect(try await service.collectionExists("c").exists)
        #expect(try await service.getCollection("c").status == .green)
        #expect(try await service.deleteCollection("c"))
        #expect(try await service.deleteCollection("c") == false)
        #expect(try await service.collectionExists("c").exists == false)
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
        #expect(try await service.collectionExists("c").exists == false)
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

/// The states a replica goes through while a snapshot replaces it (the cluster's rules, here over
/// a single node's one-member consensus): `ManualRecovery` while its data is swapped, so nothing
/// reads from or writes into it meanwhile, then `Active`; a failed swap puts the old state back.
@Suite struct SnapshotRecoveryStateTests {
    @Test func aReplicaIsOutOfServiceWhileItIsReplacedAndBackAfter() async throws {
        let (service, path) = try await makeService()
        defer { try? PosixDisk().removeItem(path) }
        #expect(try await service.createCollection("c", create(#"{"vectors":{"size":2,"distance":"Dot"}}"#)))
        let point = PointStruct(id: .number(1), vectors: ["": [1, 0]], payload: JSONObject())
        _ = try await service.update("c", PointsUpdate(.upsert([point])), wait: true)
        let collection = try await service.toc.collection("c")
        let me = collection.peerID
        var seen: ReplicaState?
        try await service.recoverReplica("c", shard: 0, priority: .replica) { () async throws(StorageError) in
            seen = await collection.layout[0].state(of: me)
            // Neither reads nor writes reach the replica being replaced.
            await #expect(throws: ServiceError.self) { _ = try await service.count("c") }
            await #expect(throws: ServiceError.self) {
                _ = try await service.update("c", PointsUpdate(.upsert([point])), wait: true)
            }
            // A second recovery of the shard is refused before it touches the replica's state.
            await #expect(throws: ServiceError.self) {
                try await service.recoverReplica("c", shard: 0, priority: .noSync) { () async throws(StorageError) in }
            }
            #expect(await collection.layout[0].state(of: me) == .manualRecovery)
        }
        #expect(seen == .manualRecovery)
        #expect(await collection.layout[0].state(of: me) == .active)
        #expect(try await service.count("c") == 1)

        await #expect(throws: ServiceError.self) {
            try await service.recoverReplica("c", shard: 0, priority: .snapshot) { () async throws(StorageError) in
                throw StorageError.badRequest("The snapshot cannot be opened")
            }
        }
        #expect(await collection.layout[0].state(of: me) == .active)
        await #expect(throws: ServiceError.self) {
            try await service.recoverReplica("c", shard: 9, priority: .snapshot) { () async throws(StorageError) in }
        }
    }
}
