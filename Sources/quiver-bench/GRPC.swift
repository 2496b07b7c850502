import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import QuiverGRPCAPI
import SwiftProtobuf
import Synchronization

/// `quiver-bench grpc`: the same dataset through REST and through gRPC, in one run against one
/// server. Each protocol uploads it into its own collection (`bench_rest`, `bench_grpc`; bodies and
/// messages built before the clock starts) with `clients` concurrent connections, waits for green,
/// then searches: recall and the server's time per query from one client, and queries/s with
/// `clients` concurrent connections for `seconds`.
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
    let batches = stride(from: 0, to: dataset.count, by: options.batch).map { start in
        Qdrant_UpsertPoints.with {
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
        }
    }
    let uploadStart = now()
    try await withGRPCClients(options.clients, host: host, port: options.grpcPort) { client, points in
        for b in stride(from: client, to: batches.count, by: options.clients) {
            _ = try await points.upsert(batches[b])
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
    let queries = (0..<min(options.queries, dataset.queryCount)).map { q in
        Qdrant_QueryPoints.with {
            $0.collectionName = "bench_grpc"
            $0.query = Qdrant_Query.with {
                $0.nearest = Qdrant_VectorInput.with {
                    $0.dense = Qdrant_DenseVector.with { $0.data = Array(dataset.queries[(q * dataset.dimension)..<((q + 1) * dataset.dimension)]) }
                }
            }
            $0.limit = UInt64(options.k)
            $0.params = Qdrant_SearchParams.with { $0.hnswEf = UInt64(options.ef) }
        }
    }
    // One client: recall and the server's time.
    let single = Mutex<(hits: Int, server: [Double], latencies: [Double])>((0, [], []))
    try await withGRPCClients(1, host: host, port: options.grpcPort) { _, points in
        for (q, query) in queries.enumerated() {
            let t = now()
            let response = try await points.query(query)
            let latency = now() - t
            let found = recall(response.result.map { UInt32($0.id.num) }, dataset.truth[q].prefix(options.k))
            single.withLock { $0.hits += found; $0.server.append(response.time); $0.latencies.append(latency) }
        }
    }
    var (hits, serverTimes, latencies) = single.withLock { $0 }
    serverTimes.sort()
    latencies.sort()
    let grpcRecall = Double(hits) / Double(queries.count * options.k)
    log(String(format: "1 client: recall@%d %.4f (hnsw_ef %d), server time p50 %.3f ms, client p50 %.3f ms",
               options.k, grpcRecall, options.ef, percentile(serverTimes, 0.5) * 1000, percentile(latencies, 0.5) * 1000))
    // Concurrent clients, each cycling through the queries from its own start.
    let loaded = Mutex<[Double]>([])
    let start = now()
    try await withGRPCClients(options.clients, host: host, port: options.grpcPort) { client, points in
        var mine: [Double] = []
        var q = client * queries.count / options.clients
        while now() - start < options.seconds {
            let t = now()
            _ = try await points.query(queries[q % queries.count])
            mine.append(now() - t)
            q += 1
        }
        loaded.withLock { $0 += mine }
    }
    let elapsed = now() - start
    let all = loaded.withLock { $0 }.sorted()
    let grpcQPS = Double(all.count) / elapsed
    log(String(format: "%d clients: %.0f queries/s, p50 %.3f ms, p99 %.3f ms", options.clients, grpcQPS,
               percentile(all, 0.5) * 1000, percentile(all, 0.99) * 1000))

    let restPoints = restUpload["upload_points_per_s"] as? Double ?? 0, restQPS = restSearch["qps"] as? Double ?? 0
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

/// Runs `body(i, points)` for `count` clients at once, each on its own HTTP/2 connection.
func withGRPCClients(_ count: Int, host: String, port: Int,
                     _ body: @escaping @Sendable (Int, Qdrant_Points.Client<HTTP2ClientTransport.Posix>) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for i in 0..<count {
            group.addTask {
                let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host == "localhost" ? "127.0.0.1" : host, port: port),
                                                               transportSecurity: .plaintext)
                try await withGRPCClient(transport: transport) { client in
                    try await body(i, Qdrant_Points.Client(wrapping: client))
                }
            }
        }
        try await group.waitForAll()
    }
}
