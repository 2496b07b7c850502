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
    /// `wait` of the upload's upserts.
    var uploadWait = true
    /// How long one client writes, alone and then beside `searchClients` searching clients (0: no write test).
    var writeSeconds = 0.0
    var writeBatch = 100
    /// Write batches a second.
    var writeRate = 20.0
    var searchClients = 4
    /// Vectors, graphs and payloads memory-mapped (`on_disk`), and int8 scalar codes kept in RAM.
    var onDisk = false
    var scalarQuantization = false
    /// The gRPC port (`quiver-bench grpc`).
    var grpcPort = 6334

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
            case "--upload-wait": uploadWait = try value() != "false"
            case "--write-seconds": writeSeconds = Double(try value()) ?? writeSeconds
            case "--write-batch": writeBatch = max(1, Int(try value()) ?? writeBatch)
            case "--write-rate": writeRate = max(0.1, Double(try value()) ?? writeRate)
            case "--search-clients": searchClients = max(1, Int(try value()) ?? searchClients)
            case "--on-disk": onDisk = true
            case "--grpc-port": grpcPort = Int(try value()) ?? grpcPort
            case "--quantization":
                guard try value() == "scalar" else { throw BenchError("--quantization: only scalar") }
                scalarQuantization = true
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

extension Dataset {
    /// The collection's `distance` for the dataset's metric.
    var distanceName: String {
        switch metric {
        case "cosine": "Cosine"
        case "ip": "Dot"
        default: "Euclid"
        }
    }
}

/// Creates the collection and uploads the dataset with concurrent clients, waiting for green
/// (unless `--skip-upload`), then searches (see `searchLoad`).
func runREST(_ options: RESTOptions) throws {
    let dataset = try Dataset(directory: options.data)
    let distance = dataset.distanceName
    let http = HTTP(base: options.url)
    let path = "/collections/\(options.collection)"
    var output: [String: Any] = ["clients": options.clients, "ef": options.ef]
    if !options.skipUpload { output.merge(try upload(dataset, options, http: http, path: path, distance: distance)) { $1 } }
    let bodies = try queryBodies(dataset, options)
    output.merge(try searchLoad(dataset, options, path: path, bodies: bodies)) { $1 }
    if options.writeSeconds > 0 { output.merge(try writeLoad(dataset, options, path: path, queryBodies: bodies)) { $1 } }
    if options.json {
        print(String(decoding: try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// Creates the collection and uploads the dataset with concurrent keep-alive clients (bodies
/// encoded before the clock starts); waits for green.
func upload(_ dataset: Dataset, _ options: RESTOptions, http: HTTP, path: String, distance: String) throws -> [String: Any] {
    let d = dataset.dimension
    _ = try? http.call("DELETE", path)
    let onDisk = options.onDisk ? "true" : "false"
    let quantization = options.scalarQuantization ? #","quantization_config":{"scalar":{"type":"int8","always_ram":true}}"# : ""
    _ = try http.ok("PUT", path, body: Data("""
        {"vectors":{"size":\(d),"distance":"\(distance)","on_disk":\(onDisk)},"on_disk_payload":\(onDisk),\
        "hnsw_config":{"m":\(options.m),"ef_construct":\(options.efConstruct),"on_disk":\(onDisk)}\(quantization)}
        """.utf8))
    log("\(dataset.count) points of \(d)-d (\(distance)) to \(options.url)\(path), \(options.clients) clients, "
        + "batches of \(options.batch), wait=\(options.uploadWait)")
    let bodies = try UpsertBodies(dataset, batch: options.batch)
    defer { bodies.remove() }

    // Each client sends every clients-th batch.
    let uploadStart = now()
    try onThreads(options.clients) { client in
        let connection = try RawHTTP(url: options.url)
        for b in stride(from: client, to: bodies.count, by: options.clients) {
            let (status, data) = try connection.call("PUT", "\(path)/points?wait=\(options.uploadWait)", body: try bodies[b])
            guard status == 200 else { throw BenchError("upsert: \(status) \(String(decoding: data.prefix(300), as: UTF8.self))") }
        }
    }
    let uploadSeconds = now() - uploadStart
    log(String(format: "upload: %.1f s, %.0f points/s", uploadSeconds, Double(dataset.count) / uploadSeconds))

    // Time to green: until the optimizers have sealed and indexed every segment.
    var status = ""
    var info: [String: Any] = [:]
    while true {
        info = (try JSONSerialization.jsonObject(with: try http.ok("GET", path)) as? [String: Any])?["result"] as? [String: Any] ?? [:]
        status = info["status"] as? String ?? ""
        if status == "green" || status == "red" { break }
        Thread.sleep(forTimeInterval: 0.1)
    }
    let greenSeconds = now() - uploadStart - uploadSeconds
    log(String(format: "status %@ %.1f s after the last write was acknowledged; %@ of %@ vectors indexed, %@ segments", status, greenSeconds,
               "\(info["indexed_vectors_count"] ?? "?")", "\(info["points_count"] ?? "?")", "\(info["segments_count"] ?? "?")"))
    return ["upload_s": uploadSeconds, "upload_points_per_s": Double(dataset.count) / uploadSeconds, "time_to_green_s": greenSeconds,
            "status": status]
}

/// The upload's bodies, one per batch, encoded before the clock starts: in memory, or, when they
/// would take more than `memoryLimit` bytes (a million 768-d points make about 8 GB of JSON), in
/// files of a temporary directory read back one at a time during the upload.
struct UpsertBodies: Sendable {
    static let memoryLimit = 2 << 30
    let count: Int
    private let inMemory: [[UInt8]]
    private let directory: String?

    init(_ dataset: Dataset, batch: Int) throws {
        let starts = Array(stride(from: 0, to: dataset.count, by: batch))
        count = starts.count
        @Sendable func body(_ b: Int) -> [UInt8] { upsertBody(dataset, ids: starts[b]..<min(dataset.count, starts[b] + batch)) }
        // A float32 in JSON: about 12 characters with its comma.
        guard dataset.count * dataset.dimension * 12 > Self.memoryLimit else {
            inMemory = (0..<count).map(body)
            directory = nil
            return
        }
        let directory = NSTemporaryDirectory() + "quiver-bench-bodies-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let started = now(), count = count
        try onThreads(ProcessInfo.processInfo.activeProcessorCount) { worker in
            for b in stride(from: worker, to: count, by: ProcessInfo.processInfo.activeProcessorCount) {
                try Data(body(b)).write(to: URL(fileURLWithPath: directory + "/\(b).json"))
            }
        }
        log(String(format: "%d bodies encoded into %@ in %.1f s", count, directory, now() - started))
        inMemory = []
        self.directory = directory
    }

    subscript(b: Int) -> [UInt8] {
        get throws {
            guard let directory else { return inMemory[b] }
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/\(b).json")))
        }
    }

    func remove() {
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// `{"points":[...]}` for points `ids`, each with the dataset's vector of row `id % count` (ids
/// past the dataset reuse its vectors).
func upsertBody(_ dataset: Dataset, ids: Range<Int>) -> [UInt8] {
    let d = dataset.dimension
    var body = "{\"points\":["
    for i in ids {
        let row = i % dataset.count
        if i > ids.lowerBound { body += "," }
        body += "{\"id\":\(i),\"vector\":"
        vectorJSON(dataset.base[(row * d)..<((row + 1) * d)], into: &body)
        body += "}"
    }
    body += "]}"
    return Array(body.utf8)
}

/// Runs `body(0..<count)` on a thread each (not `concurrentPerform`, which would run only as many
/// at once as there are cores) and rethrows the first error.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let errors = Mutex<[String]>([])
    let finished = DispatchGroup()
    for index in 0..<count {
        finished.enter()
        Thread.detachNewThread {
            defer { finished.leave() }
            do { try body(index) } catch { errors.withLock { $0.append("thread \(index): \(error)") } }
        }
    }
    finished.wait()
    if let first = errors.withLock({ $0.first }) { throw BenchError(first) }
}

/// A `points/query` body for each of the first `queries` queries.
func queryBodies(_ dataset: Dataset, _ options: RESTOptions) throws -> [[UInt8]] {
    let d = dataset.dimension
    let queries = min(options.queries, dataset.queryCount)
    guard queries > 0 else { throw BenchError("no queries to search with") }
    return (0..<queries).map { q in
        var body = "{\"query\":"
        vectorJSON(dataset.queries[(q * d)..<((q + 1) * d)], into: &body)
        body += ",\"limit\":\(options.k),\"params\":{\"hnsw_ef\":\(options.ef)}}"
        return Array(body.utf8)
    }
}

/// Searches through `points/query`: every query once from one client (recall, and the server's
/// own time per query), then `clients` keep-alive clients for `seconds` (queries/s, latency).
func searchLoad(_ dataset: Dataset, _ options: RESTOptions, path: String, bodies: [[UInt8]]) throws -> [String: Any] {
    let queries = bodies.count
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
    let start = now()
    let all = try searchClients(options.clients, bodies: bodies, url: options.url, path: path) { now() - start >= options.seconds }
    let elapsed = now() - start
    let total = all.reduce(0) { $0 + $1.count }
    let loaded = all.flatMap(\.latencies).sorted(), loadedServer = all.flatMap(\.server).sorted()
    let qps = Double(total) / elapsed
    log(String(format: "%d clients: %.0f queries/s, p50 %.3f ms, p99 %.3f ms, server time p50 %.3f ms",
               options.clients, qps, percentile(loaded, 0.5) * 1000, percentile(loaded, 0.99) * 1000, percentile(loadedServer, 0.5) * 1000))
    return ["recall": r, "server_time_p50_ms": percentile(serverTimes, 0.5) * 1000, "latency_p50_ms": percentile(latencies, 0.5) * 1000,
            "qps": qps, "p50_ms": percentile(loaded, 0.5) * 1000, "p99_ms": percentile(loaded, 0.99) * 1000,
            "loaded_server_time_p50_ms": percentile(loadedServer, 0.5) * 1000]
}

/// `count` keep-alive clients searching with `bodies` (each from its own start) until `done()`:
/// per client, the number of answers, their latencies and the server's times.
func searchClients(_ count: Int, bodies: [[UInt8]], url: String, path: String, until done: @escaping @Sendable () -> Bool) throws
    -> [(count: Int, latencies: [Double], server: [Double])] {
    let perClient = Mutex<[(count: Int, latencies: [Double], server: [Double])]>([])
    try onThreads(count) { client in
        var answers = 0, latencies: [Double] = [], server: [Double] = []
        defer { perClient.withLock { $0.append((answers, latencies, server)) } }
        let connection = try RawHTTP(url: url)
        var q = client * bodies.count / count
        while !done() {
            let t = now()
            let (status, data) = try connection.call("POST", "\(path)/points/query", body: bodies[q % bodies.count])
            guard status == 200 else { throw BenchError("status \(status)") }
            latencies.append(now() - t)
            if let seconds = RawHTTP.serverSeconds(data) { server.append(seconds) }
            answers += 1
            q += 1
        }
    }
    return perClient.withLock { $0 }
}

/// Write latency with and without searches: one client upserts batches of `writeBatch` new points
/// (ids after the dataset's, vectors taken from it in turn) with `wait=true`, `writeRate` batches a
/// second, for `writeSeconds`: first alone, then while `searchClients` clients search.
func writeLoad(_ dataset: Dataset, _ options: RESTOptions, path: String, queryBodies: [[UInt8]]) throws -> [String: Any] {
    let writer = try RawHTTP(url: options.url)
    var next = 0
    func write(for seconds: Double) throws -> [Double] {
        var latencies: [Double] = []
        let start = now()
        while now() - start < seconds {
            let first = dataset.count + next * options.writeBatch
            let body = upsertBody(dataset, ids: first..<(first + options.writeBatch))
            let due = start + Double(latencies.count) / options.writeRate
            if due > now() { Thread.sleep(forTimeInterval: due - now()) }
            let t = now()
            let (status, data) = try writer.call("PUT", "\(path)/points?wait=true", body: body)
            guard status == 200 else { throw BenchError("upsert: \(status) \(String(decoding: data.prefix(300), as: UTF8.self))") }
            latencies.append(now() - t)
            next += 1
        }
        return latencies.sorted()
    }
    let alone = try write(for: options.writeSeconds)
    let writing = Atomic<Bool>(true)
    let searchFailure = Mutex<String?>(nil)
    let searchersDone = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        defer { searchersDone.signal() }
        do { _ = try searchClients(options.searchClients, bodies: queryBodies, url: options.url, path: path) { !writing.load(ordering: .relaxed) } } catch {
            searchFailure.withLock { $0 = "\(error)" }
        }
    }
    Thread.sleep(forTimeInterval: 0.5)  // the searchers connect and warm up
    let underSearch = Result { try write(for: options.writeSeconds) }
    writing.store(false, ordering: .relaxed)
    searchersDone.wait()
    if let failure = searchFailure.withLock({ $0 }) { throw BenchError(failure) }
    let searched = try underSearch.get()
    // The written points leave again, so later runs search the dataset as it was.
    let written = (0..<(next * options.writeBatch)).map { "\(dataset.count + $0)" }.joined(separator: ",")
    let (status, data) = try writer.call("POST", "\(path)/points/delete?wait=true", body: Array("{\"points\":[\(written)]}".utf8))
    guard status == 200 else { throw BenchError("delete: \(status) \(String(decoding: data.prefix(300), as: UTF8.self))") }
    let p99Alone = percentile(alone, 0.99), p99Searched = percentile(searched, 0.99)
    log(String(format: "writes of %d new points at %.0f a second, wait=true: alone p50 %.2f ms p99 %.2f ms (%d writes); "
               + "with %d clients searching p50 %.2f ms p99 %.2f ms (%d writes), p99 ratio %.2f",
               options.writeBatch, options.writeRate, percentile(alone, 0.5) * 1000, p99Alone * 1000, alone.count, options.searchClients,
               percentile(searched, 0.5) * 1000, p99Searched * 1000, searched.count, p99Searched / p99Alone))
    return ["write_p50_ms": percentile(alone, 0.5) * 1000, "write_p99_ms": p99Alone * 1000,
            "write_searched_p50_ms": percentile(searched, 0.5) * 1000, "write_searched_p99_ms": p99Searched * 1000]
}
