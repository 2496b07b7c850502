import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
import QuiverService
import Storage

/// `quiver-bench service --data DIR [--ef 64] [--seconds 3]`: the server's search path without
/// HTTP. Uploads the dataset into a collection of an in-process `QuiverService` (a temporary
/// storage directory), runs its optimizations to the end, then times on one task, query after
/// query: `QuiverService.search` with a parsed request, the same from the request's JSON body
/// (parsed and decoded as the REST route does), each of those two steps alone, and
/// `Collection.query`. Beside `quiver-bench engine` at the same `ef`, the differences are what
/// the service layers cost a query; beside `quiver-bench rest`, what HTTP costs.
func runService(_ arguments: [String]) async throws {
    var data = "", ef = 64, seconds = 3.0
    var rest = arguments[...]
    while let flag = rest.popFirst() {
        guard let value = rest.popFirst() else { throw BenchError("\(flag) needs a value") }
        switch flag {
        case "--data": data = value
        case "--ef": ef = Int(value) ?? ef
        case "--seconds": seconds = Double(value) ?? seconds
        default: throw BenchError("unknown option \(flag)")
        }
    }
    guard !data.isEmpty else { throw BenchError("--data is required") }
    let dataset = try Dataset(directory: data)
    let distance = switch dataset.metric {
    case "cosine": "Cosine"
    case "ip": "Dot"
    default: "Euclid"
    }
    let path = NSTemporaryDirectory() + "quiver-bench-\(UUID().uuidString)"
    defer { try? PosixDisk().removeItem(path) }
    let logger = Logger(label: "quiver-bench")
    let toc = TableOfContent(storagePath: path, disk: PosixDisk(), logger: logger)
    try await toc.load()
    let service = try await QuiverService.standalone(toc: toc, disk: PosixDisk(), logger: logger)
    let create = try JSONValueDecoder().decode(CreateCollection.self, from: Array("""
        {"vectors":{"size":\(dataset.dimension),"distance":"\(distance)"},"hnsw_config":{"m":16,"ef_construct":100}}
        """.utf8))
    _ = try await service.createCollection("bench", create)
    let uploadStart = now()
    for start in stride(from: 0, to: dataset.count, by: 1000) {
        let body = try JSONParser.parse(upsertBody(dataset, ids: start..<min(dataset.count, start + 1000)))
        _ = try await service.update("bench", try PointsJSON.upsert(body), wait: false)
    }
    // Once the upload is indexed, the write segment's rest waits for a second without updates.
    try await toc.optimizeAll()
    try await Task.sleep(for: .seconds(1.2))
    try await toc.optimizeAll()
    let info = try await service.getCollection("bench")
    log(String(format: "%d points uploaded and indexed in %.1f s (%llu indexed, %llu segments)", dataset.count, now() - uploadStart,
               info.indexedVectorsCount, info.segmentsCount))

    let d = dataset.dimension
    let bodies = (0..<dataset.queryCount).map { q in
        var body = "{\"query\":"
        vectorJSON(dataset.queries[(q * d)..<((q + 1) * d)], into: &body)
        body += ",\"limit\":10,\"params\":{\"hnsw_ef\":\(ef)}}"
        return Array(body.utf8)
    }
    let requests = try bodies.map { try PointsJSON.queryRequest(try JSONParser.parse($0)) }
    var hits = 0
    for (q, request) in requests.enumerated() {
        let found = Set(try await service.search("bench", request).points.map(\.id))
        hits += dataset.truth[q].prefix(10).filter { found.contains(.number(UInt64($0))) }.count
    }
    log(String(format: "recall@10 %.4f (hnsw_ef %d)", Double(hits) / Double(10 * requests.count), ef))
    func timed(_ label: String, _ body: (Int) async throws -> Void) async rethrows {
        var count = 0
        let start = now()
        while now() - start < seconds {
            try await body(count % requests.count)
            count += 1
        }
        let elapsed = now() - start
        log(String(format: "%@: %.0f queries/s, %.1f µs per query", label, Double(count) / elapsed, elapsed / Double(count) * 1e6))
    }
    try await timed("service.search, parsed request") { _ = try await service.search("bench", requests[$0]) }
    try await timed("service.search from the JSON body") { q in
        _ = try await service.search("bench", try PointsJSON.queryRequest(try JSONParser.parse(bodies[q])))
    }
    let parsed = try bodies.map { try JSONParser.parse($0) }
    try await timed("JSON parse of the body only") { q in _ = try JSONParser.parse(bodies[q]) }
    try await timed("decoding the parsed body only") { q in _ = try PointsJSON.queryRequest(parsed[q]) }
    try await timed("collection.query") { q in
        _ = try await service.toc.collection("bench").query(requests[q])
    }
}
