import HTTPTypes
import Hummingbird
import NIOCore
import QuiverJSON
import QuiverModel
import QuiverService
import Storage

/// Point operations: updates (by ids or by filter), retrieve, scroll and count.
extension Routes {
    func addPointRoutes(to router: Router<BasicRequestContext>) {
        addUpdateRoute(router, .put, "/collections/:name/points") { body throws(JSONDecodingError) in try PointsJSON.upsert(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/delete") { body throws(JSONDecodingError) in try PointsJSON.deletePoints(body) }
        addUpdateRoute(router, .put, "/collections/:name/points/vectors") { body throws(JSONDecodingError) in try PointsJSON.updateVectors(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/vectors/delete") { body throws(JSONDecodingError) in try PointsJSON.deleteVectors(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload") { body throws(JSONDecodingError) in try PointsJSON.setPayload(body, overwrite: false) }
        addUpdateRoute(router, .put, "/collections/:name/points/payload") { body throws(JSONDecodingError) in try PointsJSON.setPayload(body, overwrite: true) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload/delete") { body throws(JSONDecodingError) in try PointsJSON.deletePayload(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload/clear") { body throws(JSONDecodingError) in try PointsJSON.clearPayload(body) }
        router.post("/collections/:name/points/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let (wait, ordering) = try request.updateParameters()
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let operations = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batch(body) }
                try await checkTimeout(request, context)
                return try await service.updateBatch(collectionName(context), operations, wait: wait, ordering: ordering)
            }
        }
        router.get("/collections/:name/points/:id") { request, context in
            await respond { () async throws(ServiceError) in
                let raw = context.parameters.decoded("id")
                let idJSON: JSONValue = UInt64(raw).map(JSONValue.unsigned) ?? .string(raw)
                let id = try Self.read { () throws(JSONDecodingError) in try PointsJSON.pointID(idJSON, "id") }
                return try await service.point(collectionName(context), id, consistency: try request.readConsistency())
            } render: { result in result.records[0].json(unnamedVector: result.unnamedVector) }
        }
        router.post("/collections/:name/points") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let read = try Self.read { () throws(JSONDecodingError) in try PointsJSON.retrieveRequest(body) }
                return try await service.retrieve(collectionName(context), read.ids, withPayload: read.withPayload, withVector: read.withVector,
                                                  shardKey: read.shardKey, consistency: try request.readConsistency())
            } render: { result in result.listJSON }
        }
        router.post("/collections/:name/points/scroll") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let scroll = try Self.read(request: "scroll_request") { () throws(JSONDecodingError) in try PointsJSON.scrollRequest(body) }
                try await checkTimeout(request, context)
                return try await service.scroll(collectionName(context), scroll, consistency: try request.readConsistency())
            } render: { result in result.pageJSON }
        }
        router.post("/collections/:name/points/count") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> JSONValue in
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                try await checkTimeout(request, context)
                let count = try await service.count(collectionName(context),
                                                    Self.read(request: "count_request") { () throws(JSONDecodingError) in try PointsJSON.countRequest(body) },
                                                    consistency: try request.readConsistency())
                return ["count": .int(Int64(count))]
            }
        }
    }

    /// A route whose body is one update operation: `wait`/`ordering` parameters, an `UpdateResult`.
    func addUpdateRoute(_ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: RouterPath,
                        _ parse: @escaping @Sendable (JSONValue) throws(JSONDecodingError) -> PointsUpdate) {
        router.on(path, method: method) { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let (wait, ordering) = try request.updateParameters()
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let operation = try Self.read { () throws(JSONDecodingError) in try parse(body) }
                try await checkTimeout(request, context)
                return try await service.update(collectionName(context), operation, wait: wait, ordering: ordering)
            }
        }
    }

    /// The `timeout` query parameter against the collection's strict mode (`max_timeout`).
    func checkTimeout(_ request: Request, _ context: BasicRequestContext) async throws(ServiceError) {
        try await service.checkTimeout(collectionName(context), request.positiveQueryInt("timeout"))
    }

    static func read<T>(request: String? = nil, _ body: () throws(JSONDecodingError) -> T) throws(ServiceError) -> T {
        try ServiceError.reading(request: request, body)
    }
}

extension RecordsResult {
    /// Retrieve's answer: the records as a list.
    var listJSON: JSONValue { .array(records.map { $0.json(unnamedVector: unnamedVector) }) }

    /// Scroll's answer: the page and the id that starts the next one.
    var pageJSON: JSONValue { ["points": listJSON, "next_page_offset": nextPageOffset?.json ?? .null] }
}

extension Request {
    /// The `consistency` of a read: `all`, `majority`, `quorum` or a positive integer (default 1).
    func readConsistency() throws(ServiceError) -> ReadConsistency {
        guard let raw = uri.queryParameters.get("consistency") else { return .default }
        guard let consistency = ReadConsistency(parameter: String(raw)) else {
            throw .format("consistency: data did not match any variant of untagged enum ReadConsistency (expected a positive integer, `majority`, `quorum` or `all`, found `\(raw)`)", .query)
        }
        return consistency
    }

    /// `wait` (default false) and `ordering` (default weak) of an update request.
    func updateParameters() throws(ServiceError) -> (wait: Bool, ordering: WriteOrdering) {
        _ = try positiveQueryInt("timeout")
        var ordering = WriteOrdering.weak
        if let raw = uri.queryParameters.get("ordering") {
            guard let parsed = WriteOrdering(rawValue: String(raw)) else {
                throw .format("ordering: unknown variant `\(raw)`, expected one of `weak`, `medium`, `strong`", .query)
            }
            ordering = parsed
        }
        return (try queryBool("wait"), ordering)
    }
}
