import SwiftProtobuf
import GRPCCore
import QuiverJSON
import QuiverModel
import QuiverService
import Storage

/// `qdrant.Points`: each call reads its message as the REST body of the same operation and calls the
/// same `QuiverService` function as the REST route.
struct PointsService: Qdrant_Points.SimpleServiceProtocol {
    let service: QuiverService

    // MARK: Updates

    private func update(_ collection: String, wait: Bool, ordering: Qdrant_WriteOrdering?, timeout: UInt64?,
                        _ read: () throws(QuiverJSON.JSONDecodingError) -> PointsUpdate) async throws -> Qdrant_PointsOperationResponse {
        try await timed { () async throws(ServiceError) in
            let operation = try ServiceError.reading(read)
            try await checkTimeout(collection, timeout)
            return try await service.update(collection, operation, wait: wait, ordering: GRPCAPI.ordering(ordering))
        } respond: { result, time in
            Qdrant_PointsOperationResponse.with { $0.result = Outbound.updateResult(result); $0.time = time }
        }
    }

    func upsert(request r: Qdrant_UpsertPoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in try PointsJSON.upsert(Inbound.upsert(r))
        }
    }

    func delete(request r: Qdrant_DeletePoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.deletePoints(Inbound.selected(r.points, [("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector))]))
        }
    }

    func updateVectors(request r: Qdrant_UpdatePointVectors, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.updateVectors(Inbound.pointVectors(r.points, shardKey: Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector),
                                                              updateFilter: r.hasUpdateFilter ? r.updateFilter : nil))
        }
    }

    func deleteVectors(request r: Qdrant_DeletePointVectors, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.deleteVectors(Inbound.selected(r.pointsSelector, [("vector", Inbound.vectorNames(r.vectors)),
                                                                            ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector))]))
        }
    }

    private func setPayload(_ r: Qdrant_SetPayloadPoints, overwrite: Bool) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.setPayload(Inbound.setPayload(r.payload, r.hasPointsSelector ? r.pointsSelector : nil, key: r.hasKey ? r.key : nil,
                                                         shardKey: Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)), overwrite: overwrite)
        }
    }

    func setPayload(request: Qdrant_SetPayloadPoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await setPayload(request, overwrite: false)
    }

    func overwritePayload(request: Qdrant_SetPayloadPoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await setPayload(request, overwrite: true)
    }

    func deletePayload(request r: Qdrant_DeletePayloadPoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.deletePayload(Inbound.selected(r.hasPointsSelector ? r.pointsSelector : nil,
                                                          [("keys", .array(r.keys.map(JSONValue.string))),
                                                           ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector))]))
        }
    }

    func clearPayload(request r: Qdrant_ClearPayloadPoints, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await update(r.collectionName, wait: r.wait, ordering: r.hasOrdering ? r.ordering : nil, timeout: r.hasTimeout ? r.timeout : nil) {
            () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.clearPayload(Inbound.selected(r.points, [("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector))]))
        }
    }

    func updateBatch(request r: Qdrant_UpdateBatchPoints, context: ServerContext) async throws -> Qdrant_UpdateBatchResponse {
        try await timed { () async throws(ServiceError) in
            let operations = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.batch(["operations": .array(r.operations.map(Inbound.operation))])
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.updateBatch(r.collectionName, operations, wait: r.wait, ordering: GRPCAPI.ordering(r.hasOrdering ? r.ordering : nil))
        } respond: { results, time in
            Qdrant_UpdateBatchResponse.with { $0.result = results.map(Outbound.updateResult); $0.time = time }
        }
    }

    func createFieldIndex(request r: Qdrant_CreateFieldIndexCollection, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await timed { () async throws(ServiceError) in
            let create = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.createFieldIndex(Inbound.object([("field_name", .string(r.fieldName)), ("field_schema", Inbound.fieldSchema(r))]))
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.createIndex(r.collectionName, create, wait: r.wait)
        } respond: { result, time in
            Qdrant_PointsOperationResponse.with { $0.result = Outbound.updateResult(result); $0.time = time }
        }
    }

    func deleteFieldIndex(request r: Qdrant_DeleteFieldIndexCollection, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await timed { () async throws(ServiceError) in
            try await service.deleteIndex(r.collectionName, r.fieldName, wait: r.wait)
        } respond: { result, time in
            Qdrant_PointsOperationResponse.with { $0.result = Outbound.updateResult(result); $0.time = time }
        }
    }

    func createVectorName(request r: Qdrant_CreateVectorNameRequest, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await timed { () async throws(ServiceError) in
            let config = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.namedVectorConfig(Inbound.namedVectorConfig(r))
            }
            return try await service.setNamedVector(r.collectionName, r.vectorName, config, wait: r.wait, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        } respond: { result, time in
            Qdrant_PointsOperationResponse.with { $0.result = Outbound.updateResult(result); $0.time = time }
        }
    }

    func deleteVectorName(request r: Qdrant_DeleteVectorNameRequest, context: ServerContext) async throws -> Qdrant_PointsOperationResponse {
        try await timed { () async throws(ServiceError) in
            try await service.setNamedVector(r.collectionName, r.vectorName, nil, wait: r.wait, timeout: GRPCAPI.duration(r.hasTimeout ? r.timeout : nil))
        } respond: { result, time in
            Qdrant_PointsOperationResponse.with { $0.result = Outbound.updateResult(result); $0.time = time }
        }
    }

    // MARK: Reads

    func get(request r: Qdrant_GetPoints, context: ServerContext) async throws -> Qdrant_GetResponse {
        try await timed { () async throws(ServiceError) in
            let read = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.retrieveRequest(Inbound.object([
                    ("ids", .array(r.ids.map(Inbound.json))), ("with_payload", r.hasWithPayload ? Inbound.json(r.withPayload) : nil),
                    ("with_vector", r.hasWithVectors ? Inbound.json(r.withVectors) : nil),
                    ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)),
                ]))
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.retrieve(r.collectionName, read.ids, withPayload: read.withPayload, withVector: read.withVector,
                                              shardKey: read.shardKey, consistency: GRPCAPI.consistency(r.hasReadConsistency ? r.readConsistency : nil))
        } respond: { result, time in
            Qdrant_GetResponse.with {
                $0.result = result.records.map { Outbound.retrievedPoint($0, unnamedVector: result.unnamedVector) }
                $0.time = time
            }
        }
    }

    func scroll(request r: Qdrant_ScrollPoints, context: ServerContext) async throws -> Qdrant_ScrollResponse {
        try await timed { () async throws(ServiceError) in
            let scroll = try ServiceError.reading(request: "scroll_request") { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.scrollRequest(Inbound.object([
                    ("filter", r.hasFilter ? Inbound.json(r.filter) : nil), ("offset", r.hasOffset ? Inbound.json(r.offset) : nil),
                    ("limit", r.hasLimit ? .unsigned(UInt64(r.limit)) : nil), ("with_payload", r.hasWithPayload ? Inbound.json(r.withPayload) : nil),
                    ("with_vector", r.hasWithVectors ? Inbound.json(r.withVectors) : nil), ("order_by", r.hasOrderBy ? Inbound.orderBy(r.orderBy) : nil),
                    ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)),
                ]))
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.scroll(r.collectionName, scroll, consistency: GRPCAPI.consistency(r.hasReadConsistency ? r.readConsistency : nil))
        } respond: { result, time in
            Qdrant_ScrollResponse.with {
                $0.result = result.records.map { Outbound.retrievedPoint($0, unnamedVector: result.unnamedVector) }
                if let next = result.nextPageOffset { $0.nextPageOffset = Outbound.pointID(next) }
                $0.time = time
            }
        }
    }

    func count(request r: Qdrant_CountPoints, context: ServerContext) async throws -> Qdrant_CountResponse {
        try await timed { () async throws(ServiceError) in
            let count = try ServiceError.reading(request: "count_request") { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.countRequest(Inbound.object([
                    ("filter", r.hasFilter ? Inbound.json(r.filter) : nil), ("exact", r.hasExact ? .bool(r.exact) : nil),
                    ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)),
                ]))
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.count(r.collectionName, count, consistency: GRPCAPI.consistency(r.hasReadConsistency ? r.readConsistency : nil))
        } respond: { count, time in
            Qdrant_CountResponse.with { $0.result = Qdrant_CountResult.with { $0.count = UInt64(count) }; $0.time = time }
        }
    }

    func facet(request r: Qdrant_FacetCounts, context: ServerContext) async throws -> Qdrant_FacetResponse {
        try await timed { () async throws(ServiceError) in
            let facet = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.facetRequest(Inbound.object([
                    ("key", .string(r.key)), ("filter", r.hasFilter ? Inbound.json(r.filter) : nil), ("limit", r.hasLimit ? .unsigned(r.limit) : nil),
                    ("exact", r.hasExact ? .bool(r.exact) : nil), ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)),
                ]))
            }
            try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
            return try await service.facet(r.collectionName, facet, consistency: GRPCAPI.consistency(r.hasReadConsistency ? r.readConsistency : nil))
        } respond: { hits, time in
            Qdrant_FacetResponse.with {
                $0.hits = hits.map { hit in Qdrant_FacetHit.with { $0.value = Outbound.facetValue(hit.value); $0.count = UInt64(hit.count) } }
                $0.time = time
            }
        }
    }

    // MARK: Searches

    /// One search-like request read by `read` from `body`.
    private func search(_ collection: String, _ body: JSONValue, request: String? = nil, consistency: Qdrant_ReadConsistency?, timeout: UInt64?,
                        _ read: (JSONValue, String) throws(QuiverJSON.JSONDecodingError) -> SearchRequest) async throws(ServiceError) -> SearchResult {
        let search = try ServiceError.reading(request: request) { () throws(QuiverJSON.JSONDecodingError) in try read(body, "") }
        try await checkTimeout(collection, timeout)
        return try await service.search(collection, search, consistency: GRPCAPI.consistency(consistency))
    }

    /// A batch of them.
    private func batch(_ collection: String, _ bodies: [JSONValue], consistency: Qdrant_ReadConsistency?, timeout: UInt64?,
                       _ read: (JSONValue, String) throws(QuiverJSON.JSONDecodingError) -> SearchRequest) async throws(ServiceError) -> [SearchResult] {
        let searches = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
            try bodies.enumerated().map { i, body throws(QuiverJSON.JSONDecodingError) in try read(body, "searches[\(i)]") }
        }
        try await checkTimeout(collection, timeout)
        return try await service.searchBatch(collection, searches, consistency: GRPCAPI.consistency(consistency))
    }

    private func batchResults(_ results: [SearchResult]) -> [Qdrant_BatchResult] {
        results.map { result in Qdrant_BatchResult.with { $0.result = Outbound.scoredPoints(result) } }
    }

    private func groups(_ collection: String, _ body: JSONValue, consistency: Qdrant_ReadConsistency?, timeout: UInt64?,
                        _ read: (JSONValue) throws(QuiverJSON.JSONDecodingError) -> GroupsRequest) async throws(ServiceError) -> Qdrant_GroupsResult {
        let request = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in try read(body) }
        try await checkTimeout(collection, timeout)
        let result = try await service.queryGroups(collection, request, consistency: GRPCAPI.consistency(consistency))
        return Outbound.groups(result.groups, unnamedVector: result.unnamedVector)
    }

    func search(request r: Qdrant_SearchPoints, context: ServerContext) async throws -> Qdrant_SearchResponse {
        try await timed { () async throws(ServiceError) in
            try await search(r.collectionName, Inbound.search(r), request: "search_request", consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.searchRequest)
        } respond: { result, time in
            Qdrant_SearchResponse.with { $0.result = Outbound.scoredPoints(result); $0.time = time }
        }
    }

    func searchBatch(request r: Qdrant_SearchBatchPoints, context: ServerContext) async throws -> Qdrant_SearchBatchResponse {
        try await timed { () async throws(ServiceError) in
            try await batch(r.collectionName, r.searchPoints.map(Inbound.search), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                            timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.searchRequest)
        } respond: { results, time in
            Qdrant_SearchBatchResponse.with { $0.result = batchResults(results); $0.time = time }
        }
    }

    func searchGroups(request r: Qdrant_SearchPointGroups, context: ServerContext) async throws -> Qdrant_SearchGroupsResponse {
        try await timed { () async throws(ServiceError) in
            try await groups(r.collectionName, Inbound.searchGroups(r), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil) { body throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.legacyGroupsRequest(body, PointsJSON.searchRequest)
            }
        } respond: { result, time in
            Qdrant_SearchGroupsResponse.with { $0.result = result; $0.time = time }
        }
    }

    func recommend(request r: Qdrant_RecommendPoints, context: ServerContext) async throws -> Qdrant_RecommendResponse {
        try await timed { () async throws(ServiceError) in
            try await search(r.collectionName, Inbound.recommend(r), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.recommendRequest)
        } respond: { result, time in
            Qdrant_RecommendResponse.with { $0.result = Outbound.scoredPoints(result); $0.time = time }
        }
    }

    func recommendBatch(request r: Qdrant_RecommendBatchPoints, context: ServerContext) async throws -> Qdrant_RecommendBatchResponse {
        try await timed { () async throws(ServiceError) in
            try await batch(r.collectionName, r.recommendPoints.map(Inbound.recommend), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                            timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.recommendRequest)
        } respond: { results, time in
            Qdrant_RecommendBatchResponse.with { $0.result = batchResults(results); $0.time = time }
        }
    }

    func recommendGroups(request r: Qdrant_RecommendPointGroups, context: ServerContext) async throws -> Qdrant_RecommendGroupsResponse {
        try await timed { () async throws(ServiceError) in
            try await groups(r.collectionName, Inbound.recommendGroups(r), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil) { body throws(QuiverJSON.JSONDecodingError) in
                try PointsJSON.legacyGroupsRequest(body, PointsJSON.recommendRequest)
            }
        } respond: { result, time in
            Qdrant_RecommendGroupsResponse.with { $0.result = result; $0.time = time }
        }
    }

    func discover(request r: Qdrant_DiscoverPoints, context: ServerContext) async throws -> Qdrant_DiscoverResponse {
        try await timed { () async throws(ServiceError) in
            try await search(r.collectionName, Inbound.discover(r), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.discoverRequest)
        } respond: { result, time in
            Qdrant_DiscoverResponse.with { $0.result = Outbound.scoredPoints(result); $0.time = time }
        }
    }

    func discoverBatch(request r: Qdrant_DiscoverBatchPoints, context: ServerContext) async throws -> Qdrant_DiscoverBatchResponse {
        try await timed { () async throws(ServiceError) in
            try await batch(r.collectionName, r.discoverPoints.map(Inbound.discover), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                            timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.discoverRequest)
        } respond: { results, time in
            Qdrant_DiscoverBatchResponse.with { $0.result = batchResults(results); $0.time = time }
        }
    }

    func query(request r: Qdrant_QueryPoints, context: ServerContext) async throws -> Qdrant_QueryResponse {
        try await timed { () async throws(ServiceError) in
            try await search(r.collectionName, Inbound.query(r), request: "internal", consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.queryRequest)
        } respond: { result, time in
            Qdrant_QueryResponse.with { $0.result = Outbound.scoredPoints(result); $0.time = time }
        }
    }

    func queryBatch(request r: Qdrant_QueryBatchPoints, context: ServerContext) async throws -> Qdrant_QueryBatchResponse {
        try await timed { () async throws(ServiceError) in
            try await batch(r.collectionName, r.queryPoints.map(Inbound.query), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                            timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.queryRequest)
        } respond: { results, time in
            Qdrant_QueryBatchResponse.with { $0.result = batchResults(results); $0.time = time }
        }
    }

    func queryGroups(request r: Qdrant_QueryPointGroups, context: ServerContext) async throws -> Qdrant_QueryGroupsResponse {
        try await timed { () async throws(ServiceError) in
            try await groups(r.collectionName, Inbound.queryGroups(r), consistency: r.hasReadConsistency ? r.readConsistency : nil,
                             timeout: r.hasTimeout ? r.timeout : nil, PointsJSON.queryGroupsRequest)
        } respond: { result, time in
            Qdrant_QueryGroupsResponse.with { $0.result = result; $0.time = time }
        }
    }

    private func matrix(_ r: Qdrant_SearchMatrixPoints) async throws(ServiceError) -> (ids: [PointID], rows: [[ScoredPoint]]) {
        let matrix = try ServiceError.reading { () throws(QuiverJSON.JSONDecodingError) in
            try PointsJSON.matrixRequest(Inbound.object([
                ("filter", r.hasFilter ? Inbound.json(r.filter) : nil), ("sample", r.hasSample ? .unsigned(r.sample) : nil),
                ("limit", r.hasLimit ? .unsigned(r.limit) : nil), ("using", r.hasUsing ? .string(r.using) : nil),
                ("shard_key", Inbound.shardKey(r.hasShardKeySelector, r.shardKeySelector)),
            ]))
        }
        try await checkTimeout(r.collectionName, r.hasTimeout ? r.timeout : nil)
        return try await service.searchMatrix(r.collectionName, matrix, consistency: GRPCAPI.consistency(r.hasReadConsistency ? r.readConsistency : nil))
    }

    func searchMatrixPairs(request r: Qdrant_SearchMatrixPoints, context: ServerContext) async throws -> Qdrant_SearchMatrixPairsResponse {
        try await timed { () async throws(ServiceError) in try await matrix(r) } respond: { result, time in
            Qdrant_SearchMatrixPairsResponse.with {
                $0.result = Qdrant_SearchMatrixPairs.with {
                    $0.pairs = zip(result.ids, result.rows).flatMap { id, row in
                        row.map { hit in
                            Qdrant_SearchMatrixPair.with { $0.a = Outbound.pointID(id); $0.b = Outbound.pointID(hit.id); $0.score = hit.score }
                        }
                    }
                }
                $0.time = time
            }
        }
    }

    func searchMatrixOffsets(request r: Qdrant_SearchMatrixPoints, context: ServerContext) async throws -> Qdrant_SearchMatrixOffsetsResponse {
        try await timed { () async throws(ServiceError) in try await matrix(r) } respond: { result, time in
            let column = Dictionary(uniqueKeysWithValues: result.ids.enumerated().map { ($1, $0) })
            return Qdrant_SearchMatrixOffsetsResponse.with {
                $0.result = Qdrant_SearchMatrixOffsets.with { offsets in
                    for (row, hits) in result.rows.enumerated() {
                        for hit in hits {
                            offsets.offsetsRow.append(UInt64(row))
                            offsets.offsetsCol.append(UInt64(column[hit.id] ?? 0))
                            offsets.scores.append(hit.score)
                        }
                    }
                    offsets.ids = result.ids.map(Outbound.pointID)
                }
                $0.time = time
            }
        }
    }

    private func checkTimeout(_ collection: String, _ seconds: UInt64?) async throws(ServiceError) {
        try await service.checkTimeout(collection, seconds.map { Int(clamping: $0) })
    }
}
