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

/// Creates the collection, uploads the dataset with concurrent clients, waits for green, then
/// searches with concurrent clients.
func runREST(_ options: RESTOptions) throws {
    let dataset = try Dataset(directory: options.data)
    let d = dataset.dimension
    let distance = switch dataset.metric {
    case "cosine": "Cosine"
    case "ip": "Dot"
    default: "Euclid"
    }
    let http = HTTP(base: options.url)
    let path = "/collections/\(options.collection)"
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

    // Searches: each client takes every clients-th query.
    let queries = min(options.queries, dataset.queryCount)
    let latencies = Mutex<[Double]>([])
    let hits = Mutex(0)
    let searchStart = now()
    DispatchQueue.concurrentPerform(iterations: options.clients) { client in
        let own = HTTP(base: options.url)
        var mine: [Double] = []
        var found = 0
        for q in stride(from: client, to: queries, by: options.clients) {
            var body = "{\"vector\":"
            vectorJSON(dataset.queries[(q * d)..<((q + 1) * d)], into: &body)
            body += ",\"limit\":\(options.k),\"params\":{\"hnsw_ef\":\(options.ef)}}"
            let t = now()
            guard let data = try? own.ok("POST", "\(path)/points/search", body: Data(body.utf8)) else {
                errors.withLock { $0.append("search \(q) failed") }
                return
            }
            mine.append(now() - t)
            let result = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["result"] as? [[String: Any]] ?? []
            let ids = result.compactMap { ($0["id"] as? NSNumber)?.uint32Value }
            found += recall(ids, dataset.truth[q].prefix(options.k))
        }
        latencies.withLock { $0 += mine }
        hits.withLock { $0 += found }
    }
    if let first = errors.withLock({ $0.first }) { throw BenchError(first) }
    let searchSeconds = now() - searchStart
    let sorted = latencies.withLock { $0.sorted() }
    let r = Double(hits.withLock { $0 }) / Double(queries * options.k)
    log(String(format: "search: %.0f queries/s with %d clients, p50 %.2f ms, p99 %.2f ms, recall@%d %.4f (hnsw_ef %d)",
               Double(queries) / searchSeconds, options.clients, percentile(sorted, 0.5) * 1000, percentile(sorted, 0.99) * 1000,
               options.k, r, options.ef))
    if options.json {
        let output: [String: Any] = [
            "upload_s": uploadSeconds, "upload_points_per_s": Double(dataset.count) / uploadSeconds, "time_to_green_s": greenSeconds,
            "status": status, "qps": Double(queries) / searchSeconds, "p50_ms": percentile(sorted, 0.5) * 1000,
            "p99_ms": percentile(sorted, 0.99) * 1000, "recall": r, "clients": options.clients, "ef": options.ef,
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys]), as: UTF8.self))
    }
}
