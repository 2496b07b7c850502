import Foundation
import QuiverGRPCAPI
import SwiftProtobuf
import Synchronization

/// `quiver-bench grpc`: the same dataset through REST and through gRPC, in one run against one
/// server. Each protocol uploads it into its own collection (`bench_rest`, `bench_grpc`; bodies and
/// messages built before the clock starts) with `clients` concurrent connections, waits for green,
/// then searches: recall and the server's time per query from one client, and queries/s with
/// `clients` concurrent connections for `seconds`. Both go through lean clients on blocking sockets
/// (`RawHTTP`, `RawGRPC`), one call at a time per connection.
func runGRPCComparison(_ options: RESTOptions) async throws {
    let dataset = try Dataset(directory: options.data)
    let distance = dataset.distanceName
    let http = HTTP(base: options.url)
    guard let host = URLComponents(string: options.url)?.host else { throw BenchError("--url \(options.url): no host") }

    var rest = options
    rest.collection = "bench_rest"
    log("REST:")
    let restUpload = try upload(dataset, rest, http: http, path: "/collections/bench_rest", distance: distance)

    log("gRPC (port \(options.grpcPort)):")
    let path = "/collections/bench_grpc"
    _ = try? http.call("DELETE", path)
    _ = try http.ok("PUT", path, body: Data("""
        {"vectors":{"size":\(dataset.dimension),"distance":"\(distance)"},"hnsw_config":{"m":\(options.m),"ef_construct":\(options.efConstruct)}}
        """.utf8))
    let batches = try stride(from: 0, to: dataset.count, by: options.batch).map { start in
        try Qdrant_UpsertPoints.with {
            $0.collectionName = "bench_grpc"
            $0.wait = options.uploadWait
            $0.points = (start..<min(dataset.count, start + options.batch)).map { i in
                Qdrant_PointStruct.with {
                    $0.id = Qdrant_PointId.with { $0.num = UInt64(i) }
                    $0.vectors = Qdrant_Vectors.with {
                        $0.vector = Qdrant_Vector.with {
                            $0.dense = Qdrant_DenseVector.with { $0.data = Array(dataset.base[(i * dataset.dimension)..<((i + 1) * dataset.dimension)]) }
                        }
                    }
                }
            }
        }.serializedBytes() as [UInt8]
    }
    let uploadStart = now()
    try onThreads(options.clients) { client in
        let connection = try RawGRPC(host: host, port: options.grpcPort)
        for b in stride(from: client, to: batches.count, by: options.clients) {
            _ = try connection.call("/qdrant.Points/Upsert", batches[b])
        }
    }
    let uploadSeconds = now() - uploadStart
    while true {
        let info = (try JSONSerialization.jsonObject(with: try http.ok("GET", path)) as? [String: Any])?["result"] as? [String: Any] ?? [:]
        if info["status"] as? String == "green" { break }
        try await Task.sleep(for: .milliseconds(100))
    }
    let grpcGreen = now() - uploadStart - uploadSeconds
    log(String(format: "upload: %.1f s, %.0f points/s; green %.1f s after the last write", uploadSeconds, Double(dataset.count) / uploadSeconds, grpcGreen))

    log("REST search:")
    let restSearch = try searchLoad(dataset, rest, path: "/collections/bench_rest", bodies: try queryBodies(dataset, rest))

    log("gRPC search:")
    let queries = try (0..<min(options.queries, dataset.queryCount)).map { q in
        try Qdrant_QueryPoints.with {
            $0.collectionName = "bench_grpc"
            $0.query = Qdrant_Query.with {
                $0.nearest = Qdrant_VectorInput.with {
                    $0.dense = Qdrant_DenseVector.with { $0.data = Array(dataset.queries[(q * dataset.dimension)..<((q + 1) * dataset.dimension)]) }
                }
            }
            $0.limit = UInt64(options.k)
            $0.params = Qdrant_SearchParams.with { $0.hnswEf = UInt64(options.ef) }
        }.serializedBytes() as [UInt8]
    }
    // One client: recall and the server's time.
    let single = try RawGRPC(host: host, port: options.grpcPort)
    var hits = 0, serverTimes: [Double] = [], latencies: [Double] = []
    for (q, query) in queries.enumerated() {
        let t = now()
        let response = try Qdrant_QueryResponse(serializedBytes: try single.call("/qdrant.Points/Query", query))
        latencies.append(now() - t)
        hits += recall(response.result.map { UInt32($0.id.num) }, dataset.truth[q].prefix(options.k))
        serverTimes.append(response.time)
    }
    serverTimes.sort()
    latencies.sort()
    let grpcRecall = Double(hits) / Double(queries.count * options.k)
    log(String(format: "1 client: recall@%d %.4f (hnsw_ef %d), server time p50 %.3f ms, client p50 %.3f ms",
               options.k, grpcRecall, options.ef, percentile(serverTimes, 0.5) * 1000, percentile(latencies, 0.5) * 1000))
    // Concurrent clients, each cycling through the queries from its own start. The two protocols
    // take turns (four slices each) so that a change in the machine's load falls on both alike.
    let restBodies = try queryBodies(dataset, rest)
    let slices = 4, slice = options.seconds / Double(slices)
    var restCount = 0, restElapsed = 0.0
    let loaded = Mutex<[Double]>([])
    var grpcElapsed = 0.0
    for _ in 0..<slices {
        let restStart = now()
        restCount += try searchClients(options.clients, bodies: restBodies, url: options.url, path: "/collections/bench_rest") {
            now() - restStart >= slice
        }.reduce(0) { $0 + $1.count }
        restElapsed += now() - restStart
        let start = now()
        try onThreads(options.clients) { client in
            let connection = try RawGRPC(host: host, port: options.grpcPort)
            var mine: [Double] = []
            var q = client * queries.count / options.clients
            while now() - start < slice {
                let t = now()
                _ = try connection.call("/qdrant.Points/Query", queries[q % queries.count])
                mine.append(now() - t)
                q += 1
            }
            loaded.withLock { $0 += mine }
        }
        grpcElapsed += now() - start
    }
    let all = loaded.withLock { $0 }.sorted()
    let grpcQPS = Double(all.count) / grpcElapsed, restQPS = Double(restCount) / restElapsed
    log(String(format: "%d clients: %.0f queries/s, p50 %.3f ms, p99 %.3f ms (REST in the same turns: %.0f queries/s)", options.clients, grpcQPS,
               percentile(all, 0.5) * 1000, percentile(all, 0.99) * 1000, restQPS))

    let restPoints = restUpload["upload_points_per_s"] as? Double ?? 0
    let grpcPoints = Double(dataset.count) / uploadSeconds
    log(String(format: "upload points/s: gRPC %.0f, REST %.0f (%.2fx); %d-client queries/s: gRPC %.0f, REST %.0f (%.2fx)",
               grpcPoints, restPoints, grpcPoints / restPoints, options.clients, grpcQPS, restQPS, grpcQPS / restQPS))
    if options.json {
        let output: [String: Any] = ["rest": restUpload.merging(restSearch) { $1 },
                                     "grpc": ["upload_points_per_s": grpcPoints, "time_to_green_s": grpcGreen, "recall": grpcRecall,
                                              "server_time_p50_ms": percentile(serverTimes, 0.5) * 1000, "qps": grpcQPS,
                                              "p50_ms": percentile(all, 0.5) * 1000, "p99_ms": percentile(all, 0.99) * 1000]]
        print(String(decoding: try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys]), as: UTF8.self))
    }
}
