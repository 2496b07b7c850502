import Foundation
import HTTPTypes
import Logging
import Hummingbird
import NIOCore
import QuiverJSON
import QuiverModel
import QuiverService
import Storage

/// Collection snapshots.
extension Routes {
    /// Collection snapshots under `/collections/{c}/snapshots`, and shard snapshots under
    /// `/collections/{c}/shards/{id}/snapshots`, each route written out (the shapes test reads them).
    func addSnapshotRoutes(to router: Router<BasicRequestContext>) {
        let collection: ShardOfRoute = { _ throws(ServiceError) in nil }
        let shard: ShardOfRoute = { context throws(ServiceError) in try Self.shardID(context) }
        router.post("/collections/:name/snapshots") { request, context in await createSnapshot(request, context, collection) }
        router.post("/collections/:name/shards/:shard_id/snapshots") { request, context in await createSnapshot(request, context, shard) }
        router.get("/collections/:name/snapshots") { _, context in await listSnapshots(context, collection) }
        router.get("/collections/:name/shards/:shard_id/snapshots") { _, context in await listSnapshots(context, shard) }
        router.get("/collections/:name/snapshots/:snapshot") { _, context in await downloadSnapshot(context, collection) }
        router.get("/collections/:name/shards/:shard_id/snapshots/:snapshot") { _, context in await downloadSnapshot(context, shard) }
        router.delete("/collections/:name/snapshots/:snapshot") { request, context in await deleteSnapshot(request, context, collection) }
        router.delete("/collections/:name/shards/:shard_id/snapshots/:snapshot") { request, context in
            await deleteSnapshot(request, context, shard)
        }
        router.put("/collections/:name/snapshots/recover") { request, context in await recoverSnapshot(request, context, collection) }
        router.put("/collections/:name/shards/:shard_id/snapshots/recover") { request, context in
            await recoverSnapshot(request, context, shard)
        }
        router.post("/collections/:name/snapshots/upload") { request, context in await uploadSnapshot(request, context, collection) }
        router.post("/collections/:name/shards/:shard_id/snapshots/upload") { request, context in
            await uploadSnapshot(request, context, shard)
        }
    }

    /// The shard a snapshot route addresses; nil for a collection's.
    typealias ShardOfRoute = @Sendable (BasicRequestContext) throws(ServiceError) -> UInt32?

    private func createSnapshot(_ request: Request, _ context: BasicRequestContext, _ shard: @escaping ShardOfRoute) async -> Response {
        await respondWaiting(request, addsData: true) { () async throws(ServiceError) in
            try await service.createSnapshot(collectionName(context), shard: shard(context), now: Int64(Date().timeIntervalSince1970))
        }
    }

    private func listSnapshots(_ context: BasicRequestContext, _ shard: ShardOfRoute) async -> Response {
        await respond { () async throws(ServiceError) in try await service.listSnapshots(collectionName(context), shard: shard(context)) }
    }

    private func downloadSnapshot(_ context: BasicRequestContext, _ shard: ShardOfRoute) async -> Response {
        await download(context) { () async throws(ServiceError) in
            try await service.snapshotFile(collectionName(context), context.parameters.decoded("snapshot"), shard: shard(context))
        }
    }

    private func deleteSnapshot(_ request: Request, _ context: BasicRequestContext, _ shard: @escaping ShardOfRoute) async -> Response {
        await respondWaiting(request) { () async throws(ServiceError) in
            try await service.deleteSnapshot(collectionName(context), context.parameters.decoded("snapshot"), shard: shard(context))
        }
    }

    private func recoverSnapshot(_ request: Request, _ context: BasicRequestContext, _ shard: @escaping ShardOfRoute) async -> Response {
        var request = request
        let body: SnapshotRecover
        do throws(ServiceError) {
            body = try await request.decodeJSON(SnapshotRecover.self, limitBytes: bodyLimit)
        } catch {
            return APIResponse.error(error, since: .now)
        }
        return await respondWaiting(request, addsData: true) { () async throws(ServiceError) in
            try await service.recoverSnapshot(collectionName(context), shard: shard(context), body)
        }
    }

    private func uploadSnapshot(_ request: Request, _ context: BasicRequestContext, _ shard: @escaping ShardOfRoute) async -> Response {
        let start = ContinuousClock.now
        let upload: String
        let priority: SnapshotPriority?
        let checksum = request.uri.queryParameters.get("checksum").map { String($0) }
        do throws(ServiceError) {
            try Access.requireGlobal(manage: true)  // before the upload is read
            priority = try request.snapshotPriority()
            if let checksum, let problem = SnapshotRecover.checksumProblem(checksum) {
                var errors = ValidationErrors()
                errors.add("checksum", problem)
                throw .validation(errors, .query)
            }
            _ = try shard(context)
            upload = try await receiveUpload(request)
        } catch {
            return APIResponse.error(error, since: start)
        }
        return await respondWaiting(request, addsData: true) { () async throws(ServiceError) in
            defer { try? FileManager.default.removeItem(atPath: upload) }
            return try await service.recover(collectionName(context), shard: shard(context), from: upload, checksum: checksum,
                                             priority: priority ?? .replica)
        }
    }

    func addFullSnapshotRoutes(to router: Router<BasicRequestContext>) {
        router.post("/snapshots") { request, _ in
            await respondWaiting(request, addsData: true) { () async throws(ServiceError) in
                try await service.createFullSnapshot(now: Int64(Date().timeIntervalSince1970))
            }
        }
        router.get("/snapshots") { _, _ in
            await respond { () async throws(ServiceError) in try await service.listFullSnapshots() }
        }
        router.get("/snapshots/:snapshot") { _, context in
            await download(context) { () async throws(ServiceError) in
                try await service.fullSnapshotFile(context.parameters.decoded("snapshot"))
            }
        }
        router.delete("/snapshots/:snapshot") { request, context in
            await respondWaiting(request) { () async throws(ServiceError) in
                try await service.deleteFullSnapshot(context.parameters.decoded("snapshot"))
            }
        }
    }

    /// Streams the archive `locate` names, or answers its error.
    func download(_ context: BasicRequestContext, _ locate: () async throws(ServiceError) -> String) async -> Response {
        let start = ContinuousClock.now
        let path: String
        do {
            path = try await locate()
        } catch {
            return APIResponse.error(error, since: start)
        }
        let name = String(path.split(separator: "/").last ?? "")
        do {
            let body = try await FileIO().loadFile(path: path, context: context)
            return Response(status: .ok, headers: [.contentType: "application/octet-stream", .contentDisposition: "attachment; filename=\"\(name)\""],
                            body: body)
        } catch {
            return APIResponse.error(.storage(.notFound("Snapshot \(name) not found")), since: start)
        }
    }

    /// Runs `handler` and answers with its result, or with `wait=false` answers at once (202,
    /// `{"status": "accepted", "time": …}`, as Qdrant) and lets it run; its errors are then only logged.
    /// `addsData`: a node refusing writes for want of disk space refuses it at once, not only in
    /// the log afterwards.
    func respondWaiting<T: Encodable & Sendable>(_ request: Request, addsData: Bool = false,
                                                 _ handler: @escaping @Sendable () async throws(ServiceError) -> T) async -> Response {
        let wait: Bool
        do {
            wait = try request.queryBool("wait", default: true)
        } catch {
            return APIResponse.error(error, since: .now)
        }
        guard !wait else { return await respond(handler) }
        if addsData, let refusal = service.writeRefusal { return APIResponse.error(.storage(.insufficientStorage(refusal)), since: .now) }
        let start = ContinuousClock.now
        Task {
            do {
                _ = try await handler()
            } catch {
                Logger(label: "quiver.rest").warning("A request answered with wait=false failed: \(error)")
            }
        }
        var writer = JSONWriter(capacity: 64)
        writer.appendASCII("{\"status\":\"accepted\",\"time\":")
        writer.writeDouble(APIResponse.seconds(since: start))
        writer.appendASCII("}")
        return APIResponse.json(.accepted, writer.bytes)
    }

    /// Streams the first file part of a `multipart/form-data` body into a file of its own (in the
    /// storage's temporary directory) and returns its path. No size limit applies: a snapshot is
    /// as large as its collection.
    func receiveUpload(_ request: Request) async throws(ServiceError) -> String {
        guard let contentType = request.headers[.contentType],
              let boundary = MultipartFile.boundary(contentType) else {
            throw .format("a snapshot upload is a multipart/form-data body with the archive in a `snapshot` part", .body)
        }
        let path = await service.toc.temporaryPath("upload")
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw .internalError("cannot store the upload at \(path)")
        }
        var parser = MultipartFile(boundary: boundary)
        do {
            defer { try? handle.close() }
            for try await chunk in request.body {
                let data = parser.feed(Array(buffer: chunk))
                if !data.isEmpty { try handle.write(contentsOf: data) }
                if parser.isDone || parser.problem != nil { break }
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw .internalError("cannot receive the upload: \(error)")
        }
        guard parser.isDone else {
            try? FileManager.default.removeItem(atPath: path)
            throw .format(parser.problem ?? "the multipart body ends before its closing boundary", .body)
        }
        return path
    }
}

extension Request {
    /// `priority` of a snapshot recovery (`no_sync`, `snapshot`, `replica`), when given.
    func snapshotPriority() throws(ServiceError) -> SnapshotPriority? {
        guard let raw = uri.queryParameters.get("priority") else { return nil }
        guard let priority = SnapshotPriority(rawValue: String(raw)) else {
            throw .format("priority: unknown variant `\(raw)`, expected one of `no_sync`, `snapshot`, `replica`", .query)
        }
        return priority
    }
}

/// The content of the part named `snapshot` of a `multipart/form-data` body, fed to it chunk by
/// chunk: other parts are skipped, a part's headers may take at most 64 KiB, and the content is
/// handed back as it arrives, holding back only as many bytes as the next delimiter could span.
struct MultipartFile {
    private let delimiter: [UInt8]
    private var pending: [UInt8] = []
    private enum State { case headers, content(wanted: Bool) }
    private var state = State.headers
    private(set) var isDone = false
    /// Set when the body is not one this reads (headers too long, no part named `snapshot`).
    private(set) var problem: String?
    static let headerLimit = 64 * 1024

    init(boundary: String) {
        // The body opens with the delimiter without its leading CRLF; adding one makes every
        // delimiter look alike.
        delimiter = Array("\r\n--\(boundary)".utf8)
        pending = Array("\r\n".utf8)
    }

    /// The boundary of a `multipart/form-data` content type.
    static func boundary(_ contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// The `snapshot` part's bytes in `chunk` that are known to be content.
    mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !isDone, problem == nil else { return [] }
        pending += chunk
        var out: [UInt8] = []
        while true {
            switch state {
            case .headers:
                // A delimiter, the part's headers, a blank line.
                guard let end = Self.find(Array("\r\n\r\n".utf8), in: pending) else {
                    if pending.count > Self.headerLimit { problem = "a multipart part's headers exceed 64 KiB" }
                    return out
                }
                guard Self.find(delimiter, in: pending) == 0 else {
                    problem = "the multipart body does not start with its boundary"
                    return out
                }
                let headers = String(decoding: pending[delimiter.count..<end], as: UTF8.self).lowercased()
                pending.removeFirst(end + 4)
                state = .content(wanted: headers.contains("name=\"snapshot\""))
            case .content(let wanted):
                if let end = Self.find(delimiter, in: pending) {
                    if wanted {
                        out += pending[..<end]
                        isDone = true
                        pending = []
                        return out
                    }
                    pending.removeFirst(end)
                    // `--` after the delimiter closes the body: no `snapshot` part came.
                    if pending.count >= delimiter.count + 2, pending[delimiter.count] == UInt8(ascii: "-") {
                        problem = "the multipart body has no part named `snapshot`"
                        return out
                    }
                    state = .headers
                    continue
                }
                let safe = max(0, pending.count - (delimiter.count - 1))
                if wanted { out += pending[..<safe] }
                pending.removeFirst(safe)
                return out
            }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count, let first = needle.first else { return nil }
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
