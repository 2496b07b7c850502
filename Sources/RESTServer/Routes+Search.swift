import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// `points/query`, `points/query/batch` and the legacy `points/search`, `points/search/batch`.
extension Routes {
    func addSearchRoutes(to router: Router<BasicRequestContext>) {
        router.post("/collections/:name/points/query") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> SearchResult in
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let search = try Self.read(request: "internal") { () throws(JSONDecodingError) in try PointsJSON.queryRequest(body) }
                return try await service.search(context.parameters.decoded("name"), search)
            } render: { result in ["points": Self.render(result)] }
        }
        router.post("/collections/:name/points/query/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: false) }
                return try await searchAll(context.parameters.decoded("name"), searches)
            } render: { results in .array(results.map { ["points": Self.render($0)] }) }
        }
        router.post("/collections/:name/points/search") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> SearchResult in
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let search = try Self.read(request: "search_request") { () throws(JSONDecodingError) in try PointsJSON.searchRequest(body) }
                return try await service.search(context.parameters.decoded("name"), search)
            } render: { result in Self.render(result) }
        }
        router.post("/collections/:name/points/search/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: true) }
                return try await searchAll(context.parameters.decoded("name"), searches)
            } render: { results in .array(results.map(Self.render)) }
        }
    }

    func searchAll(_ collection: String, _ searches: [SearchRequest]) async throws(ServiceError) -> [SearchResult] {
        try await service.checkSearchBatch(collection, count: searches.count)
        var results: [SearchResult] = []
        for search in searches { results.append(try await service.search(collection, search)) }
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
                let wait = try request.updateParameters()
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let create = try Self.read { () throws(JSONDecodingError) in try PointsJSON.createFieldIndex(body) }
                return try await service.createIndex(context.parameters.decoded("name"), create, wait: wait)
            }
        }
        router.post("/collections/:name/facet") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [(value: JSONValue, count: Int)] in
                try await checkTimeout(request, context)
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let facet = try Self.read { () throws(JSONDecodingError) in try PointsJSON.facetRequest(body) }
                return try await service.facet(context.parameters.decoded("name"), facet)
            } render: { hits in
                ["hits": .array(hits.map { ["value": $0.value, "count": .int(Int64($0.count))] })]
            }
        }
        router.delete("/collections/:name/index/:field") { request, context in
            await respond { () async throws(ServiceError) in
                let wait = try request.updateParameters()
                return try await service.deleteIndex(context.parameters.decoded("name"), context.parameters.decoded("field"), wait: wait)
            }
        }
    }
}
