import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// Shard keys, the collection's cluster info, and the local shard API (reads of one shard held by
/// this peer: `/collections/{c}/shards/{id}/points`, `…/points/scroll`, `…/points/count`).
extension Routes {
    func addShardRoutes(to router: Router<BasicRequestContext>) {
        router.put("/collections/:name/shards") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(CreateShardingKey.self, limitBytes: bodyLimit)
                return try await service.createShardKey(collectionName(context), body, timeout: timeout)
            }
        }
        router.post("/collections/:name/shards/delete") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(DropShardingKey.self, limitBytes: bodyLimit)
                return try await service.dropShardKey(collectionName(context), body, timeout: timeout)
            }
        }
        router.get("/collections/:name/shards") { _, context in
            await respond { () async throws(ServiceError) -> JSONValue in
                let keys = try await service.shardKeys(collectionName(context))
                return ["shard_keys": keys.map { .array($0.map { ["key": $0.json] }) } ?? .null]
            }
        }
        router.get("/collections/:name/cluster") { _, context in
            await respond { () async throws(ServiceError) in try await service.collectionClusterInfo(collectionName(context)) }
        }
        router.post("/collections/:name/cluster") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(ClusterOperation.self, limitBytes: bodyLimit)
                return try await service.updateCollectionCluster(collectionName(context), body, timeout: timeout)
            }
        }
        router.post("/collections/:name/shards/:shard_id/points") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let shard = try Self.shardID(context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let read = try Self.read { () throws(JSONDecodingError) in try PointsJSON.retrieveRequest(body) }
                return try await service.shardRetrieve(collectionName(context), shard: shard, read)
            } render: { result in result.listJSON }
        }
        router.post("/collections/:name/shards/:shard_id/points/scroll") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let shard = try Self.shardID(context)
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let scroll = try Self.read { () throws(JSONDecodingError) in try PointsJSON.scrollRequest(body) }
                return try await service.shardScroll(collectionName(context), shard: shard, scroll)
            } render: { result in result.pageJSON }
        }
        router.post("/collections/:name/shards/:shard_id/points/count") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> JSONValue in
                let shard = try Self.shardID(context)
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let count = try await service.shardCount(collectionName(context), shard: shard,
                                                         Self.read { () throws(JSONDecodingError) in try PointsJSON.countRequest(body) })
                return ["count": .int(Int64(count))]
            }
        }
    }

    static func shardID(_ context: BasicRequestContext) throws(ServiceError) -> UInt32 {
        let raw = context.parameters.decoded("shard_id")
        guard let id = UInt32(raw) else { throw .format("shard_id: can not parse `\(raw)` to a u32", .path) }
        return id
    }
}
