import SwiftProtobuf
import GRPCCore
import QuiverJSON
import QuiverModel
import QuiverService

/// `qdrant.Collections`: collections, aliases, cluster setup and shard keys.
struct CollectionsService: Qdrant_Collections.SimpleServiceProtocol {
    let service: QuiverService

    private func operation(_ run: () async throws(ServiceError) -> Bool) async throws -> Qdrant_CollectionOperationResponse {
        try await timed(run) { result, time in Qdrant_CollectionOperationResponse.with { $0.result = result; $0.time = time } }
    }

    func get(request: Qdrant_GetCollectionInfoRequest, context: ServerContext) async throws -> Qdrant_GetCollectionInfoResponse {
        try await timed { () async throws(ServiceError) in try await service.getCollection(request.collectionName) } respond: { info, time in
            Qdrant_GetCollectionInfoResponse.with { $0.result = Outbound.collectionInfo(info); $0.time = time }
        }
    }

    func list(request: Qdrant_ListCollectionsRequest, context: ServerContext) async throws -> Qdrant_ListCollectionsResponse {
        try await timed { () async throws(ServiceError) in await service.listCollections() } respond: { list, time in
            Qdrant_ListCollectionsResponse.with {
                $0.collections = list.collections.map { c in Qdrant_CollectionDescription.with { $0.name = c.name } }
                $0.time = time
            }
        }
    }

    func create(request r: Qdrant_CreateCollection, context: ServerContext) async throws -> Qdrant_CollectionOperationResponse {
        try await operation { () async throws(ServiceError) in
            let body = try ServiceError.decoding(CreateCollection.self, from: Inbound.createCollection(r))
            return try await service.createCollection(r.collectionName, body, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        }
    }

    func update(request r: Qdrant_UpdateCollection, context: ServerContext) async throws -> Qdrant_CollectionOperationResponse {
        try await operation { () async throws(ServiceError) in
            let body = try ServiceError.decoding(UpdateCollection.self, from: Inbound.updateCollection(r))
            return try await service.updateCollection(r.collectionName, body, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        }
    }

    func delete(request r: Qdrant_DeleteCollection, context: ServerContext) async throws -> Qdrant_CollectionOperationResponse {
        try await operation { () async throws(ServiceError) in
            try await service.deleteCollection(r.collectionName, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        }
    }

    func updateAliases(request r: Qdrant_ChangeAliases, context: ServerContext) async throws -> Qdrant_CollectionOperationResponse {
        try await operation { () async throws(ServiceError) in
            let body = try ServiceError.decoding(ChangeAliasesOperation.self, from: Inbound.aliases(r))
            return try await service.updateAliases(body, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        }
    }

    private func aliases(_ list: CollectionsAliasesResponse, _ time: Double) -> Qdrant_ListAliasesResponse {
        Qdrant_ListAliasesResponse.with {
            $0.aliases = list.aliases.map { a in Qdrant_AliasDescription.with { $0.aliasName = a.aliasName; $0.collectionName = a.collectionName } }
            $0.time = time
        }
    }

    func listCollectionAliases(request: Qdrant_ListCollectionAliasesRequest, context: ServerContext) async throws -> Qdrant_ListAliasesResponse {
        try await timed { () async throws(ServiceError) in try await service.collectionAliases(request.collectionName) } respond: { aliases($0, $1) }
    }

    func listAliases(request: Qdrant_ListAliasesRequest, context: ServerContext) async throws -> Qdrant_ListAliasesResponse {
        try await timed { () async throws(ServiceError) in await service.listAliases() } respond: { aliases($0, $1) }
    }

    func collectionClusterInfo(request: Qdrant_CollectionClusterInfoRequest, context: ServerContext) async throws -> Qdrant_CollectionClusterInfoResponse {
        try await timed { () async throws(ServiceError) in try await service.collectionClusterInfo(request.collectionName) } respond: { info, time in
            var out = Outbound.clusterInfo(info)
            out.time = time
            return out
        }
    }

    func collectionExists(request: Qdrant_CollectionExistsRequest, context: ServerContext) async throws -> Qdrant_CollectionExistsResponse {
        try await timed { () async throws(ServiceError) in try await service.collectionExists(request.collectionName) } respond: { existence, time in
            Qdrant_CollectionExistsResponse.with { $0.result = Qdrant_CollectionExists.with { $0.exists = existence.exists }; $0.time = time }
        }
    }

    func updateCollectionClusterSetup(request r: Qdrant_UpdateCollectionClusterSetupRequest,
                                      context: ServerContext) async throws -> Qdrant_UpdateCollectionClusterSetupResponse {
        try await timed { () async throws(ServiceError) in
            let operation = try ServiceError.decoding(ClusterOperation.self, from: Inbound.clusterOperation(r))
            return try await service.updateCollectionCluster(r.collectionName, operation, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        } respond: { result, time in
            Qdrant_UpdateCollectionClusterSetupResponse.with { $0.result = result; $0.time = time }
        }
    }

    func createShardKey(request r: Qdrant_CreateShardKeyRequest, context: ServerContext) async throws -> Qdrant_CreateShardKeyResponse {
        try await timed { () async throws(ServiceError) in
            let body = try ServiceError.decoding(CreateShardingKey.self, from: Inbound.createShardKey(r.request))
            return try await service.createShardKey(r.collectionName, body, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        } respond: { result, time in
            Qdrant_CreateShardKeyResponse.with { $0.result = result; $0.time = time }
        }
    }

    func deleteShardKey(request r: Qdrant_DeleteShardKeyRequest, context: ServerContext) async throws -> Qdrant_DeleteShardKeyResponse {
        try await timed { () async throws(ServiceError) in
            let body = try ServiceError.decoding(DropShardingKey.self, from: ["shard_key": Inbound.json(r.request.shardKey)])
            return try await service.dropShardKey(r.collectionName, body, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        } respond: { result, time in
            Qdrant_DeleteShardKeyResponse.with { $0.result = result; $0.time = time }
        }
    }

    func listShardKeys(request: Qdrant_ListShardKeysRequest, context: ServerContext) async throws -> Qdrant_ListShardKeysResponse {
        try await timed { () async throws(ServiceError) in try await service.shardKeys(request.collectionName) } respond: { keys, time in
            Qdrant_ListShardKeysResponse.with {
                $0.shardKeys = (keys ?? []).map { key in Qdrant_ShardKeyDescription.with { $0.key = Outbound.shardKey(key) } }
                $0.time = time
            }
        }
    }
}
