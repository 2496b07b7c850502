import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct RESTOptions {
    var url = "http://127.0.0.1:6333"
    var data = ""
    var collection = "bench"
    var clients = 4
    var batch = 256
    var ef = 64
    var k = 10
    var queries = 1000
    var m = 16
    var efConstruct = 100
    var json = false
    /// Search the collection as it is: no upload.
    var skipUpload = false
    /// How long the concurrent clients search.
    var seconds = 10.0

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            func value() throws -> String {
                guard let v = rest.popFirst() else { throw BenchError("\(flag) needs a value") }
                return v
            }
            switch flag {
            case "--url": url = try value()
            case "--data": data = try value()
            case "--collection": collection = try value()
            case "--clients": clients = max(1, Int(try value()) ?? clients)
            case "--batch": batch = max(1, Int(try value()) ?? batch)
            case "--ef": ef = Int(try value()) ?? ef
            case "--k": k = Int(try value()) ?? k
            case "--queries": queries = Int(try value()) ?? queries
            case "--m": m = Int(try value()) ?? m
            case "--ef-construct": efConstruct = Int(try value()) ?? efConstruct
            case "--json": json = true
            case "--skip-upload": skipUpload = true
            case "--seconds": seconds = Double(try value()) ?? seconds
            default: throw BenchError("unknown option \(flag)")
            }
        }
        guard !data.isEmpty else { throw BenchError("--data is required") }
    }
}

/// A blocking HTTP client for one thread at a time.
struct HTTP {
    let base: String
    let session: URLSession

    init(base: String) {
        self.base = base
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 64
        configuration.timeoutIntervalForRequest = 600
        session = URLSession(configuration: configuration)
    }

    /// Sends the request and returns the status and body; throws on transport errors.
    func call(_ method: String, _ path: String, body: Data? = nil) throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        nonisolated(unsafe) var failure: (any Error)?
        session.dataTask(with: request) { data, response, error in
            if let error { failure = error } else { result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }

    func ok(_ method: String, _ path: String, body: Data? = nil) throws -> Data {
        let (status, data) = try call(method, path, body: body)
        guard (200..<300).contains(status) else {
            throw BenchError("\(method) \(path): \(status) \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return data
    }
}

func vectorJSON(_ v: ArraySlice<Float>, into out: inout String) {
    out += "["
    var first = true
    for x in v {
        if !first { out += "," }
        first = false
        out += "\(x)"
    }
    out += "]"
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

/// Creates the collection and uploads the dataset with concurrent clients, waiting for green
/// (unless `--skip-upload`), then searches (see `searchLoad`).
func runREST(_ options: RESTOptions) throws {
    let dataset = try Dataset(directory: options.data)
    let distance = switch dataset.metric {
    case "cosine": "Cosine"
    case "ip": "Dot"
    default: "Euclid"
    }
    let http = HTTP(base: options.url)
    let path = "/collections/\(options.collection)"
    var output: [String: Any] = ["clients": options.clients, "ef": options.ef]
    if !options.skipUpload { output.merge(try upload(dataset, options, http: http, path: path, distance: distance)) { $1 } }
    output.merge(try searchLoad(dataset, options, path: path)) { $1 }
    if options.json {
        print(String(decoding: try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// Creates the collection and uploads the dataset with concurrent clients; waits for green.
func upload(_ dataset: Dataset, _ options: RESTOptions, http: HTTP, path: String, distance: String) throws -> [String: Any] {
    let d = dataset.dimension
    _ = try? http.call("DELETE", path)
    _ = try http.ok("PUT", path, body: Data("""
        {"vectors":{"size":\(d),"distance":"\(distance)"},"hnsw_config":{"m":\(options.m),"ef_construct":\(options.efConstruct)}}
        """.utf8))
    log("\(dataset.count) points of \(d)-d (\(distance)) to \(options.url)\(path), \(options.clients) clients, batches of \(options.batch)")

    // Upload: each client sends every clients-th batch.
    let batches = stride(from: 0, to: dataset.count, by: options.batch).map { $0..<min(dataset.count, $0 + options.batch) }
    let uploadStart = now()
    let errors = Mutex<[String]>([])
    DispatchQueue.concurrentPerform(iterations: options.clients) { client in
        let own = HTTP(base: options.url)
        for b in stride(from: client, to: batches.count, by: options.clients) {
            var body = "{\"points\":["
            for (n, i) in batches[b].enumerated() {
                if n > 0 { body += "," }
                body += "{\"id\":\(i),\"vector\":"
                vectorJSON(dataset.base[(i * d)..<((i + 1) * d)], into: &body)
                body += "}"
            }
            body += "]}"
            do { _ = try own.ok("PUT", "\(path)/points?wait=true", body: Data(body.utf8)) } catch {
                errors.withLock { $0.append("\(error)") }
                return
            }
        }
    }
    if let first = errors.withLock({ $0.first }) { throw BenchError(first) }
    let uploadSeconds = now() - uploadStart
    log(String(format: "upload: %.1f s, %.0f points/s", uploadSeconds, Double(dataset.count) / uploadSeconds))

    // Time to green: until the optimizers have sealed and indexed every segment.
    var status = ""
    while true {
        let info = try JSONSerialization.jsonObject(with: try http.ok("GET", path)) as? [String: Any]
        status = (info?["result"] as? [String: Any])?["status"] as? String ?? ""
        if status == "green" || status == "red" { break }
        Thread.sleep(forTimeInterval: 0.2)
    }
    let greenSeconds = now() - uploadStart - uploadSeconds
    log(String(format: "status %@ %.1f s after the upload", status, greenSeconds))
    return ["upload_s": uploadSeconds, "upload_points_per_s": Double(dataset.count) / uploadSeconds, "time_to_green_s": greenSeconds,
            "status": status]
}

/// Searches through `points/query`: every query once from one client (recall, and the server's
/// own time per query), then `clients` keep-alive clients for `seconds` (queries/s, latency).
func searchLoad(_ dataset: Dataset, _ options: RESTOptions, path: String) throws -> [String: Any] {
    let d = dataset.dimension
    let queries = min(options.queries, dataset.queryCount)
    guard queries > 0 else { throw BenchError("no queries to search with") }
    let bodies: [[UInt8]] = (0..<queries).map { q in
        var body = "{\"query\":"
        vectorJSON(dataset.queries[(q * d)..<((q + 1) * d)], into: &body)
        body += ",\"limit\":\(options.k),\"params\":{\"hnsw_ef\":\(options.ef)}}"
        return Array(body.utf8)
    }
    let single = try RawHTTP(url: options.url)
    var hits = 0
    var serverTimes: [Double] = []
    var latencies: [Double] = []
    for (q, body) in bodies.enumerated() {
        let t = now()
        let (status, data) = try single.call("POST", "\(path)/points/query", body: body)
        latencies.append(now() - t)
        guard status == 200 else { throw BenchError("query \(q): \(status) \(String(decoding: data.prefix(300), as: UTF8.self))") }
        if let seconds = RawHTTP.serverSeconds(data) { serverTimes.append(seconds) }
        let result = ((try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])?["result"] as? [String: Any])?["points"] as? [[String: Any]] ?? []
        hits += recall(result.compactMap { ($0["id"] as? NSNumber)?.uint32Value }, dataset.truth[q].prefix(options.k))
    }
    serverTimes.sort()
    latencies.sort()
    let r = Double(hits) / Double(queries * options.k)
    log(String(format: "1 client: recall@%d %.4f (hnsw_ef %d), server time p50 %.3f ms, client p50 %.3f ms",
               options.k, r, options.ef, percentile(serverTimes, 0.5) * 1000, percentile(latencies, 0.5) * 1000))

    // Concurrent keep-alive clients, each cycling through the queries from its own start.
    let errors = Mutex<[String]>([])
    let perClient = Mutex<[(count: Int, latencies: [Double], server: [Double])]>([])
    let start = now()
    // A thread per client (concurrentPerform would run only as many at once as there are cores).
    let finished = DispatchGroup()
    for client in 0..<options.clients {
        finished.enter()
        Thread.detachNewThread {
            defer { finished.leave() }
            runClient(client)
        }
    }
    finished.wait()
    @Sendable func runClient(_ client: Int) {
        var count = 0, mine: [Double] = [], server: [Double] = []
        do {
            let connection = try RawHTTP(url: options.url)
            var q = client * queries / options.clients
            while now() - start < options.seconds {
                let t = now()
                let (status, data) = try connection.call("POST", "\(path)/points/query", body: bodies[q % queries])
                guard status == 200 else { throw BenchError("status \(status)") }
                mine.append(now() - t)
                if let seconds = RawHTTP.serverSeconds(data) { server.append(seconds) }
                count += 1
                q += 1
            }
        } catch {
            errors.withLock { $0.append("client \(client): \(error)") }
        }
        perClient.withLock { $0.append((count, mine, server)) }
    }
    let elapsed = now() - start
    if let first = errors.withLock({ $0.first }) { throw BenchError(first) }
    let all = perClient.withLock { $0 }
    let total = all.reduce(0) { $0 + $1.count }
    let loaded = all.flatMap(\.latencies).sorted(), loadedServer = all.flatMap(\.server).sorted()
    let qps = Double(total) / elapsed
    log(String(format: "%d clients: %.0f queries/s, p50 %.3f ms, p99 %.3f ms, server time p50 %.3f ms",
               options.clients, qps, percentile(loaded, 0.5) * 1000, percentile(loaded, 0.99) * 1000, percentile(loadedServer, 0.5) * 1000))
    return ["recall": r, "server_time_p50_ms": percentile(serverTimes, 0.5) * 1000, "latency_p50_ms": percentile(latencies, 0.5) * 1000,
            "qps": qps, "p50_ms": percentile(loaded, 0.5) * 1000, "p99_ms": percentile(loaded, 0.99) * 1000,
            "loaded_server_time_p50_ms": percentile(loadedServer, 0.5) * 1000]
}
