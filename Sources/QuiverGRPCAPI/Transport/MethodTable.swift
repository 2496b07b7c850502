import GRPCCore
import SwiftProtobuf
import QuiverService

/// Every method of the public API by its HTTP/2 path (`/qdrant.Points/Upsert`): each reads one
/// request message and answers one response message, as all of Qdrant's public methods do.
struct MethodTable: Sendable {
    struct Method: Sendable {
        let descriptor: MethodDescriptor
        let call: @Sendable ([UInt8], ServerContext) async throws -> [UInt8]
    }

    private(set) var methods: [String: Method] = [:]
    let service: QuiverService

    init(service: QuiverService, commit: String?) {
        self.service = service
        let info = QdrantInfoService(commit: commit)
        let collections = CollectionsService(service: service)
        let points = PointsService(service: service)
        let snapshots = SnapshotsService(service: service)
        let health = HealthService()

        add(Qdrant_Qdrant.Method.HealthCheck.descriptor, info.healthCheck(request:context:))

        add(Qdrant_Collections.Method.Get.descriptor, collections.get(request:context:))
        add(Qdrant_Collections.Method.List.descriptor, collections.list(request:context:))
        add(Qdrant_Collections.Method.Create.descriptor, collections.create(request:context:))
        add(Qdrant_Collections.Method.Update.descriptor, collections.update(request:context:))
        add(Qdrant_Collections.Method.Delete.descriptor, collections.delete(request:context:))
        add(Qdrant_Collections.Method.UpdateAliases.descriptor, collections.updateAliases(request:context:))
        add(Qdrant_Collections.Method.ListCollectionAliases.descriptor, collections.listCollectionAliases(request:context:))
        add(Qdrant_Collections.Method.ListAliases.descriptor, collections.listAliases(request:context:))
        add(Qdrant_Collections.Method.CollectionClusterInfo.descriptor, collections.collectionClusterInfo(request:context:))
        add(Qdrant_Collections.Method.CollectionExists.descriptor, collections.collectionExists(request:context:))
        add(Qdrant_Collections.Method.UpdateCollectionClusterSetup.descriptor, collections.updateCollectionClusterSetup(request:context:))
        add(Qdrant_Collections.Method.CreateShardKey.descriptor, collections.createShardKey(request:context:))
        add(Qdrant_Collections.Method.DeleteShardKey.descriptor, collections.deleteShardKey(request:context:))
        add(Qdrant_Collections.Method.ListShardKeys.descriptor, collections.listShardKeys(request:context:))

        add(Qdrant_Points.Method.Upsert.descriptor, points.upsert(request:context:))
        add(Qdrant_Points.Method.Delete.descriptor, points.delete(request:context:))
        add(Qdrant_Points.Method.Get.descriptor, points.get(request:context:))
        add(Qdrant_Points.Method.UpdateVectors.descriptor, points.updateVectors(request:context:))
        add(Qdrant_Points.Method.DeleteVectors.descriptor, points.deleteVectors(request:context:))
        add(Qdrant_Points.Method.SetPayload.descriptor, points.setPayload(request:context:))
        add(Qdrant_Points.Method.OverwritePayload.descriptor, points.overwritePayload(request:context:))
        add(Qdrant_Points.Method.DeletePayload.descriptor, points.deletePayload(request:context:))
        add(Qdrant_Points.Method.ClearPayload.descriptor, points.clearPayload(request:context:))
        add(Qdrant_Points.Method.CreateFieldIndex.descriptor, points.createFieldIndex(request:context:))
        add(Qdrant_Points.Method.DeleteFieldIndex.descriptor, points.deleteFieldIndex(request:context:))
        add(Qdrant_Points.Method.CreateVectorName.descriptor, points.createVectorName(request:context:))
        add(Qdrant_Points.Method.DeleteVectorName.descriptor, points.deleteVectorName(request:context:))
        add(Qdrant_Points.Method.Search.descriptor, points.search(request:context:))
        add(Qdrant_Points.Method.SearchBatch.descriptor, points.searchBatch(request:context:))
        add(Qdrant_Points.Method.SearchGroups.descriptor, points.searchGroups(request:context:))
        add(Qdrant_Points.Method.Scroll.descriptor, points.scroll(request:context:))
        add(Qdrant_Points.Method.Recommend.descriptor, points.recommend(request:context:))
        add(Qdrant_Points.Method.RecommendBatch.descriptor, points.recommendBatch(request:context:))
        add(Qdrant_Points.Method.RecommendGroups.descriptor, points.recommendGroups(request:context:))
        add(Qdrant_Points.Method.Discover.descriptor, points.discover(request:context:))
        add(Qdrant_Points.Method.DiscoverBatch.descriptor, points.discoverBatch(request:context:))
        add(Qdrant_Points.Method.Count.descriptor, points.count(request:context:))
        add(Qdrant_Points.Method.UpdateBatch.descriptor, points.updateBatch(request:context:))
        add(Qdrant_Points.Method.Query.descriptor, points.query(request:context:))
        add(Qdrant_Points.Method.QueryBatch.descriptor, points.queryBatch(request:context:))
        add(Qdrant_Points.Method.QueryGroups.descriptor, points.queryGroups(request:context:))
        add(Qdrant_Points.Method.Facet.descriptor, points.facet(request:context:))
        add(Qdrant_Points.Method.SearchMatrixPairs.descriptor, points.searchMatrixPairs(request:context:))
        add(Qdrant_Points.Method.SearchMatrixOffsets.descriptor, points.searchMatrixOffsets(request:context:))

        add(Qdrant_Snapshots.Method.Create.descriptor, snapshots.create(request:context:))
        add(Qdrant_Snapshots.Method.List.descriptor, snapshots.list(request:context:))
        add(Qdrant_Snapshots.Method.Delete.descriptor, snapshots.delete(request:context:))
        add(Qdrant_Snapshots.Method.CreateFull.descriptor, snapshots.createFull(request:context:))
        add(Qdrant_Snapshots.Method.ListFull.descriptor, snapshots.listFull(request:context:))
        add(Qdrant_Snapshots.Method.DeleteFull.descriptor, snapshots.deleteFull(request:context:))

        add(Grpc_Health_V1_Health.Method.Check.descriptor, health.check(request:context:))
    }

    subscript(path: String) -> Method? { methods[path] }

    private mutating func add<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
        _ descriptor: MethodDescriptor, _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
    ) {
        methods["/" + descriptor.fullyQualifiedMethod] = Method(descriptor: descriptor) { bytes, context in
            let request: Input
            do {
                request = try Input(serializedBytes: bytes)
            } catch {
                // tonic's status for a message that does not decode.
                throw RPCError(code: .internalError, message: "failed to decode Protobuf message: \(error)")
            }
            return try await handler(request, context).serializedBytes()
        }
    }
}
