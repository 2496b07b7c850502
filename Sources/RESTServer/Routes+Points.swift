import HTTPTypes
import Hummingbird
import NIOCore
import QuiverJSON
import QuiverModel
import QuiverService

/// Point operations without filters or vector search.
extension Routes {
    func addPointRoutes(to router: Router<BasicRequestContext>) {
        addUpdateRoute(router, .put, "/collections/:name/points") { body throws(JSONDecodingError) in .upsert(try PointsJSON.insertOperations(body)) }
        addUpdateRoute(router, .post, "/collections/:name/points/delete") { body throws(JSONDecodingError) in .delete(try PointsJSON.idsSelector(body)) }
        addUpdateRoute(router, .put, "/collections/:name/points/vectors") { body throws(JSONDecodingError) in try PointsJSON.updateVectors(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/vectors/delete") { body throws(JSONDecodingError) in try PointsJSON.deleteVectors(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload") { body throws(JSONDecodingError) in try PointsJSON.setPayload(body, overwrite: false) }
        addUpdateRoute(router, .put, "/collections/:name/points/payload") { body throws(JSONDecodingError) in try PointsJSON.setPayload(body, overwrite: true) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload/delete") { body throws(JSONDecodingError) in try PointsJSON.deletePayload(body) }
        addUpdateRoute(router, .post, "/collections/:name/points/payload/clear") { body throws(JSONDecodingError) in try PointsJSON.clearPayload(body) }
        router.post("/collections/:name/points/batch") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let wait = try request.updateParameters()
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let operations = try Self.read { () throws(JSONDecodingError) in try PointsJSON.batch(body) }
                return try await service.updateBatch(context.parameters.decoded("name"), operations, wait: wait)
            }
        }
        router.get("/collections/:name/points/:id") { _, context in
            await respondRecords { () async throws(ServiceError) in
                let raw = context.parameters.decoded("id")
                let idJSON: JSONValue = UInt64(raw).map(JSONValue.unsigned) ?? .string(raw)
                let id = try Self.read { () throws(JSONDecodingError) in try PointsJSON.pointID(idJSON, "id") }
                return try await service.point(context.parameters.decoded("name"), id)
            } render: { result in result.records[0].json(unnamedVector: result.unnamedVector) }
        }
        router.post("/collections/:name/points") { request, context in
            var request = request
            return await respondRecords { () async throws(ServiceError) in
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let (ids, withPayload, withVector) = try Self.read { () throws(JSONDecodingError) in
                    guard let ids = body["ids"] else { throw JSONDecodingError(path: "", message: "missing field `ids`") }
                    return (try PointsJSON.ids(ids, "ids"),
                            try WithPayload(json: body["with_payload"], default: .all),
                            try WithVector(json: body["with_vector"], default: .none))
                }
                return try await service.retrieve(context.parameters.decoded("name"), ids, withPayload: withPayload, withVector: withVector)
            } render: { result in .array(result.records.map { $0.json(unnamedVector: result.unnamedVector) }) }
        }
        router.post("/collections/:name/points/scroll") { request, context in
            var request = request
            return await respondRecords { () async throws(ServiceError) in
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                let (offset, limit, withPayload, withVector) = try Self.read { () throws(JSONDecodingError) in
                    try Self.rejectUnsupported(body, ["filter", "order_by", "shard_key"])
                    let offset = try body["offset"].flatMap { $0.isNull ? nil : $0 }.map { v throws(JSONDecodingError) in try PointsJSON.pointID(v, "offset") }
                    let limit = try body["limit"].flatMap { $0.isNull ? nil : $0 }.map { v throws(JSONDecodingError) in try Self.integer(v, "limit") }
                    return (offset, limit, try WithPayload(json: body["with_payload"], default: .all),
                            try WithVector(json: body["with_vector"], default: .none))
                }
                return try await service.scroll(context.parameters.decoded("name"), offset: offset, limit: limit,
                                                withPayload: withPayload, withVector: withVector)
            } render: { result in
                [
                    "points": .array(result.records.map { $0.json(unnamedVector: result.unnamedVector) }),
                    "next_page_offset": result.nextPageOffset?.json ?? .null,
                ]
            }
        }
        router.post("/collections/:name/points/count") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) -> JSONValue in
                let body = try await request.parseJSON(limitBytes: bodyLimit, emptyMeans: [:])
                try Self.read { () throws(JSONDecodingError) in try Self.rejectUnsupported(body, ["filter", "shard_key"]) }
                let count = try await service.count(context.parameters.decoded("name"))
                return ["count": .int(Int64(count))]
            }
        }
    }

    /// A route whose body is one update operation: `wait`/`ordering` parameters, an `UpdateResult`.
    func addUpdateRoute(_ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: RouterPath,
                        _ parse: @escaping @Sendable (JSONValue) throws(JSONDecodingError) -> UpdateOperation) {
        router.on(path, method: method) { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let wait = try request.updateParameters()
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let operation = try Self.read { () throws(JSONDecodingError) in try parse(body) }
                return try await service.update(context.parameters.decoded("name"), operation, wait: wait)
            }
        }
    }

    /// Runs a body reader, turning its errors into format errors of the JSON body.
    static func read<T>(_ body: () throws(JSONDecodingError) -> T) throws(ServiceError) -> T {
        do {
            return try body()
        } catch {
            throw .format(error.description, .body)
        }
    }

    static func rejectUnsupported(_ body: JSONValue, _ keys: [String]) throws(JSONDecodingError) {
        for key in keys where body[key].map({ !$0.isNull }) == true {
            throw JSONDecodingError(path: key, message: "`\(key)` is not supported yet")
        }
    }

    static func integer(_ value: JSONValue, _ path: String) throws(JSONDecodingError) -> Int {
        switch value {
        case .int(let i): return Int(i)
        default: throw JSONDecodingError(path: path, message: "invalid type: \(value.kindDescription), expected an unsigned integer")
        }
    }
}

/// Like `respond`, with a custom rendering of the result.
func respondRecords<T>(_ handler: () async throws(ServiceError) -> T, render: (T) -> JSONValue) async -> Response {
    let start = ContinuousClock.now
    do {
        return APIResponse.ok(render(try await handler()), since: start)
    } catch {
        return APIResponse.error(error, since: start)
    }
}

extension Request {
    /// `wait` (default false) and `ordering` of an update request.
    func updateParameters() throws(ServiceError) -> Bool {
        _ = try positiveQueryInt("timeout")
        if let ordering = uri.queryParameters.get("ordering"), !["weak", "medium", "strong"].contains(ordering) {
            throw .format("ordering: unknown variant `\(ordering)`, expected one of `weak`, `medium`, `strong`", .query)
        }
        switch uri.queryParameters.get("wait") {
        case nil, "false": return false
        case "true": return true
        case let other?: throw .format("wait: expected true or false, found `\(other)`", .query)
        }
    }

    /// Collects and parses the body; an empty body is `emptyMeans` when given.
    mutating func parseJSON(limitBytes: Int, emptyMeans: JSONValue? = nil) async throws(ServiceError) -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limitBytes)
        } catch {
            throw .payloadTooLarge(limitBytes: limitBytes)
        }
        if buffer.readableBytes == 0, let emptyMeans { return emptyMeans }
        do {
            return try buffer.withUnsafeReadableBytes { raw throws(JSONParseError) -> JSONValue in
                try JSONParser.parse(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
            }
        } catch {
            throw .format(error.description, .body)
        }
    }
}
