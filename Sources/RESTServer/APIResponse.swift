import Foundation
import HTTPTypes
import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService
import Storage
import NIOCore

/// Qdrant's response envelopes:
/// success `{"result": …, "status": "ok", "time": seconds}`,
/// failure `{"status": {"error": "…"}, "time": seconds}`.
enum APIResponse {
    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    static func text(_ status: HTTPResponse.Status, _ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(
            status: status,
            headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func ok(_ result: JSONValue, since start: ContinuousClock.Instant) -> Response {
        ok(since: start) { $0.write(result) }
    }

    /// The envelope around a result `write` writes.
    static func ok(since start: ContinuousClock.Instant, _ write: (inout JSONWriter) -> Void) -> Response {
        var writer = JSONWriter(capacity: 512)
        writer.appendASCII("{\"result\":")
        write(&writer)
        writer.appendASCII(",\"status\":\"ok\",\"time\":")
        writer.writeDouble(seconds(since: start))
        writer.appendASCII("}")
        return json(.ok, writer.bytes)
    }

    static func error(_ error: ServiceError, since start: ContinuousClock.Instant) -> Response {
        let body: JSONValue = [
            "status": ["error": .string(error.description)],
            "time": .double(seconds(since: start)),
        ]
        var response = json(error.httpStatus, JSONWriter.write(body))
        if case .storage(.rateLimited(_, let retryAfter?)) = error { response.headers[.retryAfter] = "\(retryAfter)" }
        return response
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        ((ContinuousClock.now - start).inSeconds * 1e6).rounded() / 1e6
    }
}

/// Runs a handler and renders its result (with `render`) or its error in Qdrant's envelope.
func respond<T>(_ handler: () async throws(ServiceError) -> T, render: (T) throws -> JSONValue) async -> Response {
    await run(handler) { result, start in
        do {
            return APIResponse.ok(try render(result), since: start)
        } catch {
            return APIResponse.error(.internalError("cannot encode response: \(error)"), since: start)
        }
    }
}

/// Runs a handler and writes its result into the envelope with `write` (no JSONValue in between).
func respond<T>(_ handler: () async throws(ServiceError) -> T, write: (T, inout JSONWriter) -> Void) async -> Response {
    await run(handler) { result, start in APIResponse.ok(since: start) { write(result, &$0) } }
}

/// The handler's result made a response by `response` (given when the request started), or its
/// error in Qdrant's envelope.
private func run<T>(_ handler: () async throws(ServiceError) -> T, _ response: (T, ContinuousClock.Instant) -> Response) async -> Response {
    let start = ContinuousClock.now
    do {
        return response(try await handler(), start)
    } catch {
        return APIResponse.error(error, since: start)
    }
}

/// Runs a handler whose result is encoded as it is.
func respond<T: Encodable>(_ handler: () async throws(ServiceError) -> T) async -> Response {
    await respond(handler) { try JSONValueEncoder().encode($0) }
}

extension Request {
    /// Collects the body (up to `limitBytes`) and parses it; an empty body is `emptyMeans` when
    /// given. Too large is 413, malformed is a format error with line and column.
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

    /// The body decoded as `T`; mistyped fields are format errors naming the field.
    mutating func decodeJSON<T: Decodable>(_ type: T.Type, limitBytes: Int) async throws(ServiceError) -> T {
        try ServiceError.decoding(T.self, from: try await parseJSON(limitBytes: limitBytes))
    }

    /// An optional positive integer query parameter such as `timeout`.
    func positiveQueryInt(_ name: String) throws(ServiceError) -> Int? {
        guard uri.query != nil, let raw = uri.queryParameters.get(name) else { return nil }
        guard let value = Int(raw) else {
            throw .format("\(name): invalid digit found in string `\(raw)`", .query)
        }
        if value < 1 {
            var errors = ValidationErrors()
            errors.range(name, value, min: 1)
            throw .validation(errors, .query)
        }
        return value
    }
}

extension Request {
    /// `timeout` in seconds, for operations that wait on consensus.
    func timeoutSeconds() throws(ServiceError) -> Duration? {
        try positiveQueryInt("timeout").map { .seconds($0) }
    }

    /// A boolean query parameter (`true`/`false`); absent means `defaultValue`.
    func queryBool(_ name: String, default defaultValue: Bool = false) throws(ServiceError) -> Bool {
        guard let raw = uri.queryParameters.get(name) else { return defaultValue }
        switch raw {
        case "true": return true
        case "false": return false
        default: throw .format("\(name): expected true or false, found `\(raw)`", .query)
        }
    }
}

extension Routes {
    /// The `{collection_name}` of a route that addresses an existing collection, checked by
    /// Qdrant's basic rules (a 422 naming the path parameter otherwise).
    func collectionName(_ context: BasicRequestContext) throws(ServiceError) -> String {
        let name = context.parameters.decoded("name")
        if let problem = NameRules.addressedCollectionNameProblem(name) {
            var errors = ValidationErrors()
            errors.add("collection_name", problem)
            throw .validation(errors, .path)
        }
        return name
    }
}

extension Parameters {
    /// A path parameter with percent-escapes decoded (`my%20coll` → `my coll`).
    func decoded(_ name: String) -> String {
        let raw = get(name) ?? ""
        guard raw.utf8.contains(UInt8(ascii: "%")) else { return raw }
        return raw.removingPercentEncoding ?? raw
    }
}
