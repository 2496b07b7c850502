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
            } write: { result, writer in Self.write(points: result, to: &writer) }
        }
        router.post("/collections/:name/points/query/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: false) }
                try await checkTimeout(request, context)
                return try await service.searchBatch(collectionName(context), searches, consistency: try request.readConsistency())
            } write: { results, writer in Self.write(results, to: &writer) { Self.write(points: $0, to: &$1) } }
        }
        router.post("/collections/:name/points/search") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> SearchResult in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let search = try Self.read(request: "search_request") { () throws(JSONDecodingError) in try PointsJSON.searchRequest(body) }
                try await checkTimeout(request, context)
                return try await service.search(collectionName(context), search, consistency: try request.readConsistency())
            } write: { result, writer in Self.write(result, to: &writer) }
        }
        router.post("/collections/:name/points/search/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> [SearchResult] in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batchRequests(body, legacy: true) }
                try await checkTimeout(request, context)
                return try await service.searchBatch(collectionName(context), searches, consistency: try request.readConsistency())
            } write: { results, writer in Self.write(results, to: &writer) { Self.write($0, to: &$1) } }
        }
        router.post("/collections/:name/points/query/groups") { request, context in
            await groups(request, context) { body throws(JSONDecodingError) in try PointsJSON.queryGroupsRequest(body) }
        }
        router.post("/collections/:name/points/search/groups") { request, context in
            await groups(request, context) { body throws(JSONDecodingError) in try PointsJSON.legacyGroupsRequest(body, PointsJSON.searchRequest) }
        }
        router.post("/collections/:name/points/recommend/groups") { request, context in
            await groups(request, context) { body throws(JSONDecodingError) in try PointsJSON.legacyGroupsRequest(body, PointsJSON.recommendRequest) }
        }
        router.post("/collections/:name/points/search/matrix/pairs") { request, context in
            await matrix(request, context) { ids, rows in
                ["pairs": .array(zip(ids, rows).flatMap { id, row in
                    row.map { hit in .object(JSONObject([("a", id.json), ("b", hit.id.json), ("score", ScoredPoint.scoreJSON(hit.score))])) }
                })]
            }
        }
        router.post("/collections/:name/points/search/matrix/offsets") { request, context in
            await matrix(request, context) { ids, rows in
                let column = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
                let cells = rows.enumerated().flatMap { row, hits in hits.map { (row, column[$0.id] ?? 0, $0.score) } }
                return ["offsets_row": .array(cells.map { .uint(UInt64($0.0)) }), "offsets_col": .array(cells.map { .uint(UInt64($0.1)) }),
                        "scores": .array(cells.map { ScoredPoint.scoreJSON($0.2) }), "ids": .array(ids.map(\.json))]
            }
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
        } write: { result, writer in Self.write(result, to: &writer) }
    }

    /// A batch of them: `{"searches": [...]}`.
    func legacyBatch(_ request: Request, _ context: BasicRequestContext,
                     _ read: @Sendable (JSONValue, String) throws(JSONDecodingError) -> SearchRequest) async -> Response {
        var request = request
        return await respond { () async throws(ServiceError) -> [SearchResult] in
            let body = try await request.parseJSON(limitBytes: bodyLimit)
            let searches = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batch(body, read) }
            try await checkTimeout(request, context)
            return try await service.searchBatch(collectionName(context), searches, consistency: try request.readConsistency())
        } write: { results, writer in Self.write(results, to: &writer) { Self.write($0, to: &$1) } }
    }

    /// A grouped search, read by `read`: `{"groups": [{"id", "hits", "lookup"?}]}`.
    func groups(_ request: Request, _ context: BasicRequestContext,
                _ read: @Sendable (JSONValue) throws(JSONDecodingError) -> GroupsRequest) async -> Response {
        var request = request
        return await respond { () async throws(ServiceError) -> (groups: [PointGroup], unnamedVector: Bool) in
            let body = try await request.parseJSON(limitBytes: bodyLimit)
            let groups = try Self.read { () throws(JSONDecodingError) in try read(body) }
            try await checkTimeout(request, context)
            return try await service.queryGroups(collectionName(context), groups, consistency: try request.readConsistency())
        } render: { result in
            ["groups": .array(result.groups.map { group in
                var object = JSONObject([("id", group.id), ("hits", .array(group.hits.map { $0.json(unnamedVector: result.unnamedVector) }))])
                if let lookup = group.lookup { object["lookup"] = lookup.json(unnamedVector: result.unnamedVector) }
                return .object(object)
            })]
        }
    }

    /// A distance matrix request, rendered by `render`.
    func matrix(_ request: Request, _ context: BasicRequestContext,
                _ render: @escaping @Sendable ([PointID], [[ScoredPoint]]) -> JSONValue) async -> Response {
        var request = request
        return await respond { () async throws(ServiceError) -> (ids: [PointID], rows: [[ScoredPoint]]) in
            let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
            let matrix = try Self.read { () throws(JSONDecodingError) in try PointsJSON.matrixRequest(body) }
            try await checkTimeout(request, context)
            return try await service.searchMatrix(collectionName(context), matrix, consistency: try request.readConsistency())
        } render: { result in render(result.ids, result.rows) }
    }

    /// A search's points as a JSON array, written straight to `writer`.
    static func write(_ result: SearchResult, to writer: inout JSONWriter) {
        write(result.points, to: &writer) { $0.write(to: &$1, unnamedVector: result.unnamedVector) }
    }

    /// `{"points": [...]}`, written straight to `writer`.
    static func write(points result: SearchResult, to writer: inout JSONWriter) {
        writer.appendASCII("{\"points\":")
        write(result, to: &writer)
        writer.appendASCII("}")
    }

    /// A JSON array of `elements`, each written by `write`.
    static func write<T>(_ elements: [T], to writer: inout JSONWriter, _ write: (T, inout JSONWriter) -> Void) {
        writer.appendASCII("[")
        for (i, element) in elements.enumerated() {
            if i > 0 { writer.appendASCII(",") }
            write(element, &writer)
        }
        writer.appendASCII("]")
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
