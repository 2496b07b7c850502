import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// `points/query`, `points/query/batch` and the legacy `points/search`, `points/recommend`,
/// `points/discover` and their batches.
extension Routes {
    func addSearchRoutes(to router: Router<BasicRequestContext>) {
        router.post("/collections/:name/points/query") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> SearchResult in
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let search = try Self.read(request: "internal") { () throws(JSONDecodingError) in try PointsJSON.queryRequest(body) }
                try await checkTimeout(request, context)
                return try await service.search(collectionName(context), search, consistency: try request.readConsistency())
            } render: { result in ["points": Self.render(result)] }
        }
        router.post("/collections/:name/points/query/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: false) }
                try await checkTimeout(request, context)
                return try await searchAll(collectionName(context), searches, consistency: try request.readConsistency())
            } render: { results in .array(results.map { ["points": Self.render($0)] }) }
        }
        router.post("/collections/:name/points/search") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> SearchResult in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let search = try Self.read(request: "search_request") { () throws(JSONDecodingError) in try PointsJSON.searchRequest(body) }
                try await checkTimeout(request, context)
                return try await service.search(collectionName(context), search, consistency: try request.readConsistency())
            } render: { result in Self.render(result) }
        }
        router.post("/collections/:name/points/search/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: true) }
                try await checkTimeout(request, context)
                return try await searchAll(collectionName(context), searches, consistency: try request.readConsistency())
            } render: { results in .array(results.map(Self.render)) }
        }
        let recommend: @Sendable (JSONValue, String) throws(JSONDecodingError) -> SearchRequest = PointsJSON.recommendRequest
        let discover: @Sendable (JSONValue, String) throws(JSONDecodingError) -> SearchRequest = PointsJSON.discoverRequest
        router.post("/collections/:name/points/recommend") { request, context in await legacySearch(request, context, recommend) }
        router.post("/collections/:name/points/recommend/batch") { request, context in await legacyBatch(request, context, recommend) }
        router.post("/collections/:name/points/discover") { request, context in await legacySearch(request, context, discover) }
        router.post("/collections/:name/points/discover/batch") { request, context in await legacyBatch(request, context, discover) }
    }

    /// One legacy recommend or discover request, read by `read`.
    func legacySearch(_ request: Request, _ context: BasicRequestContext,
                      _ read: @Sendable (JSONValue, String) throws(JSONDecodingError) -> SearchRequest) async -> Response {
        var request = request
        return await respond { () async throws(ServiceError) -> SearchResult in
            let body = try await request.parseJSON(limitBytes: bodyLimit)
            let search = try Self.read { () throws(JSONDecodingError) in try read(body, "") }
            try await checkTimeout(request, context)
            return try await service.search(collectionName(context), search, consistency: try request.readConsistency())
        } render: { result in Self.render(result) }
    }

    /// A batch of them: `{"searches": [...]}`.
    func legacyBatch(_ request: Request, _ context: BasicRequestContext,
                     _ read: @Sendable (JSONValue, String) throws(JSONDecodingError) -> SearchRequest) async -> Response {
        var request = request
        return await respond { () async throws(ServiceError) -> [SearchResult] in
            let body = try await request.parseJSON(limitBytes: bodyLimit)
            let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batch(body, read) }
            try await checkTimeout(request, context)
            return try await searchAll(collectionName(context), searches, consistency: try request.readConsistency())
        } render: { results in .array(results.map(Self.render)) }
    }

    func searchAll(_ collection: String, _ searches: [SearchRequest],
                   consistency: ReadConsistency) async throws(ServiceError) -> [SearchResult] {
        try await service.checkSearchBatch(collection, count: searches.count)
        var results: [SearchResult] = []
        for search in searches { results.append(try await service.search(collection, search, consistency: consistency)) }
        return results
    }

    static func render(_ result: SearchResult) -> JSONValue {
        .array(result.points.map { $0.json(unnamedVector: result.unnamedVector) })
    }
}

/// Payload indexes: `PUT /collections/{c}/index`, `DELETE /collections/{c}/index/{field}`.
extension Routes {
    func addIndexRoutes(to router: Router<BasicRequestContext>) {
        router.put("/collections/:name/index") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let wait = try request.updateParameters().wait
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let create = try Self.read { () throws(JSONDecodingError) in try PointsJSON.createFieldIndex(body) }
                try await checkTimeout(request, context)
                return try await service.createIndex(collectionName(context), create, wait: wait)
            }
        }
        router.post("/collections/:name/facet") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [(value: JSONValue, count: Int)] in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let facet = try Self.read { () throws(JSONDecodingError) in try PointsJSON.facetRequest(body) }
                try await checkTimeout(request, context)
                return try await service.facet(collectionName(context), facet, consistency: try request.readConsistency())
            } render: { hits in
                ["hits": .array(hits.map { ["value": $0.value, "count": .int(Int64($0.count))] })]
            }
        }
        router.delete("/collections/:name/index/:field") { request, context in
            await respond { () async throws(ServiceError) in
                let wait = try request.updateParameters().wait
                return try await service.deleteIndex(collectionName(context), context.parameters.decoded("field"), wait: wait)
            }
        }
    }
}
