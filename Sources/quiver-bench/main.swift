import CVectorKernels
import Foundation
import VectorIndex

/// quiver-bench: measures Quiver's vector index in-process on `../shared/bench` datasets.
///
///     quiver-bench engine --data DIR --m 16 --ef-construct 100 --threads T --k 10
///                         --ef 10,16,32,64 [--json] [--filters --filter-queries 200 --filter-ef 64,128]
///                         [--payload-m M] [--quantization scalar|binary|binary2|binary1.5|pq4|pq8|pq16 --oversampling 2]
///
/// Prints build time, memory, and recall@k and queries/s per `ef` (best of 3), single-threaded
/// and on all threads; with --filters the same for each filter of meta.json, planned as the
/// server plans a segment: an exact scan of the matching points below `full_scan_threshold`,
/// the graph above (with payload links for the integer payload values when --payload-m > 0).
/// With --quantization, the sweep again with the graph walked on quantized codes and the
/// oversampled candidates rescored by the float vectors. With --json the last line is the JSON
/// object `../shared/bench/bench_peers.py` reads (extra keys: `quantized`, `qps_all`).
///
///     quiver-bench rest --url http://127.0.0.1:6333 --data DIR [--clients 4] [--batch 256] [--ef 64]
///                       [--skip-upload] [--upload-wait false] [--seconds 10] [--json]
///                       [--write-seconds S --write-batch 100 --write-rate 20 --search-clients 4]
///                       [--on-disk] [--quantization scalar]
///
/// Measures a running server through its REST API: upload throughput (bodies encoded before the
/// clock starts) and the time from the last acknowledged write until the collection is green
/// (unless --skip-upload); recall@k and the server's own `time` per query from one client; then
/// queries/s and latency p50/p99 from `clients` keep-alive connections on plain sockets for
/// `seconds`. With --write-seconds, the latency of `wait=true` upserts of new points from one
/// client (`write-rate` batches a second), alone and while `search-clients` clients search.
/// The collection is created with `on_disk` vectors, graphs and payloads with --on-disk, and with
/// int8 scalar codes kept in RAM with --quantization scalar.
///
///     quiver-bench grpc --url http://127.0.0.1:6333 --grpc-port 6334 --data DIR [--clients 8] [--batch 1000]
///                       [--ef 64] [--upload-wait false] [--seconds 10] [--json]
///
/// The same upload and searches through REST and through gRPC in one run against one server, each
/// protocol into its own collection, and the ratio of the two: see `runGRPCComparison`.
///
///     quiver-bench service --data DIR [--ef 64] [--seconds 3]
///
/// The server's search path in-process, without HTTP: see `runService`.
///
///     quiver-bench merge --data DIR [--gone 0.05,0.1,0.2] [--new 0.1] [--m 16] [--ef-construct 100]
///                        [--threads T] [--ef 32,64] [--filter-queries 200]
///
/// A merge's graph: an earlier graph over all but the last `new` share of the points; for each
/// `gone` share, that many of its points deleted at random and the rest merged with the new
/// points, once over the earlier graph (healed) and once from nothing. Prints both build times
/// and recall@k / queries/s per `ef` on `filter-queries` queries against an exact scan.
///
///     quiver-bench json
///
/// Parses an upsert body of 1,000 128-d points with the server's JSON parser, its numbers written
/// with 17 digits and in float32's shortest form, and prints MB/s beside `strtod` per number.

struct Options {
    var data = ""
    var m = 16
    var efConstruct = 100
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var k = 10
    var efs = [10, 16, 32, 64, 128, 256]
    var json = false
    var filters = false
    var filterQueries = 200
    var filterEfs = [64, 128, 256, 512]
    /// KB of vectors, as Qdrant's `full_scan_threshold`.
    var fullScanThresholdKB = 10_000
    var payloadM = 0
    var quantization: QuantizationMethod?
    var oversampling = 2.0
    /// `merge`: shares of the earlier graph's points deleted, and share of new points.
    var gone = [0.05, 0.1, 0.2]
    var newShare = 0.1

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let v = rest.popFirst() else { throw BenchError("\(flag) needs a value") }
            return v
        }
        func ints(_ flag: String) throws -> [Int] { try value(flag).split(separator: ",").map { Int($0) ?? 0 } }
        while let flag = rest.popFirst() {
            switch flag {
            case "--data": data = try value(flag)
            case "--m": m = Int(try value(flag)) ?? m
            case "--ef-construct": efConstruct = Int(try value(flag)) ?? efConstruct
            case "--threads": threads = Int(try value(flag)) ?? threads
            case "--k": k = Int(try value(flag)) ?? k
            case "--ef": efs = try ints(flag)
            case "--json": json = true
            case "--filters": filters = true
            case "--filter-queries": filterQueries = Int(try value(flag)) ?? filterQueries
            case "--filter-ef": filterEfs = try ints(flag)
            case "--full-scan-threshold-kb": fullScanThresholdKB = Int(try value(flag)) ?? fullScanThresholdKB
            case "--payload-m": payloadM = Int(try value(flag)) ?? payloadM
            case "--oversampling": oversampling = Double(try value(flag)) ?? oversampling
            case "--gone": gone = try value(flag).split(separator: ",").map { Double($0) ?? 0 }
            case "--new": newShare = Double(try value(flag)) ?? newShare
            case "--quantization":
                switch try value(flag) {
                case "scalar": quantization = .scalar(quantile: 0.99)
                case "binary": quantization = .binary(bits: .one, asymmetric: false)
                case "binary-asym": quantization = .binary(bits: .one, asymmetric: true)
                case "binary1.5": quantization = .binary(bits: .oneAndHalf, asymmetric: false)
                case "binary2": quantization = .binary(bits: .two, asymmetric: true)
                case "pq4": quantization = .product(elementsPerCode: 1)
                case "pq8": quantization = .product(elementsPerCode: 2)
                case "pq16": quantization = .product(elementsPerCode: 4)
                case "pq32": quantization = .product(elementsPerCode: 8)
                case let other: throw BenchError("unknown --quantization \(other)")
                }
            default: throw BenchError("unknown option \(flag)")
            }
        }
        guard !data.isEmpty else { throw BenchError("--data is required") }
    }
}

/// Resident and peak resident memory in MB (from /proc/self/status).
func memoryMB() -> (rss: Double, peak: Double) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        return Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.flatMap { Double($0) } ?? 0) / 1024
    }
    return (field("VmRSS:"), field("VmHWM:"))
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

func now() -> Double { Date().timeIntervalSince1970 }

func log(_ text: String) { FileHandle.standardError.write((text + "\n").data(using: .utf8)!) }

func recall(_ found: [UInt32], _ truth: ArraySlice<Int32>) -> Int {
    let wanted = Set(truth.filter { $0 >= 0 }.map { UInt32($0) })
    return found.filter(wanted.contains).count
}

extension Dataset {
    /// The vectors and queries as an index compares them: cosine as dot on normalised vectors.
    func indexed() -> (base: [Float], queries: [Float], metric: IndexMetric) {
        var base = base, queries = queries
        switch metric {
        case "cosine":
            base.withUnsafeMutableBufferPointer { b in for i in 0..<count { quiver_normalize_f32(b.baseAddress! + i * dimension, dimension) } }
            queries.withUnsafeMutableBufferPointer { q in for i in 0..<queryCount { quiver_normalize_f32(q.baseAddress! + i * dimension, dimension) } }
            return (base, queries, .dot)
        case "ip": return (base, queries, .dot)
        default: return (base, queries, .l2)
        }
    }
}

func runEngine(_ options: Options) throws {
    let dataset = try Dataset(directory: options.data)
    let (base, queries, metric) = dataset.indexed()
    let dimension = dataset.dimension
    log("\(dataset.count) points of \(dimension)-d (\(dataset.metric)), \(dataset.queryCount) queries; kernels: \(String(cString: quiver_isa_name(quiver_active_isa())))")
    let rssBefore = memoryMB().rss
    var output: [String: Any] = [:]
    try base.withUnsafeBufferPointer { basePointer in
        let space = VectorSpace(base: basePointer.baseAddress!, count: dataset.count, dimension: dimension, metric: metric)
        let cpuStart = cpuSeconds(), start = now()
        let parameters = HNSWParameters(m: options.m, efConstruct: options.efConstruct, threads: options.threads)
        // Payload blocks as the server chooses them: values held by more than the full-scan
        // threshold and fewer than 4 / m of the points.
        let threshold = options.fullScanThresholdKB * 1024 / (dimension * 4)
        let blocks = options.payloadM > 0 && options.filters
            ? try dataset.payloadValueBlocks().filter { $0.count > threshold && $0.count <= dataset.count * 4 / options.m } : []
        let graph = HNSWGraph.build(space, parameters, extraLinks: blocks.isEmpty ? 0 : 2 * options.payloadM)
        if !blocks.isEmpty {
            graph.addPayloadLinks(space, blocks: blocks, HNSWParameters(m: options.payloadM, efConstruct: options.efConstruct, threads: options.threads))
            log("payload links for \(blocks.count) value blocks")
        }
        let buildSeconds = now() - start, buildCPU = cpuSeconds() - cpuStart
        let memory = memoryMB()
        log(String(format: "build: %.2f s (%.2f s CPU, %d threads), index %.1f MB, peak %.1f MB", buildSeconds, buildCPU, options.threads,
                   memory.rss - rssBefore, memory.peak))
        output["build_s"] = buildSeconds
        output["build_cpu_s"] = buildCPU
        output["index_rss_mb"] = memory.rss - rssBefore
        output["peak_rss_mb"] = memory.peak
        let context = SearchContext(count: dataset.count)
        try queries.withUnsafeBufferPointer { queryPointer in
            func query(_ q: Int) -> UnsafePointer<Float> { queryPointer.baseAddress! + q * dimension }
            output["sweep"] = sweep(dataset, options: options, label: "float") { q, ef, context in
                graph.search(query(q), k: options.k, ef: ef, space: space, filter: AcceptAll(), context: context).map(\.point)
            }
            if let method = options.quantization {
                let t = now()
                let quantized = QuantizedVectors.train(space, method: method, points: Array(0..<UInt32(dataset.count)))
                let trainSeconds = now() - t
                log(String(format: "quantization %@: %.2f s, %.1f MB of codes", "\(method)", trainSeconds, Double(quantized.bytesInMemory) / 1e6))
                let candidates = Int((Double(options.k) * options.oversampling).rounded(.up))
                let runs = sweep(dataset, options: options, label: "quantized") { q, ef, context in
                    let found = graph.search(quantized.scorer(query(q), metric: metric), k: candidates, ef: max(ef, candidates),
                                             filter: AcceptAll(), context: context)
                    return found.map { Neighbor(distance: space.distance(query(q), $0.point), point: $0.point) }
                        .sorted { $0.distance < $1.distance }.prefix(options.k).map(\.point)
                }
                output["quantized"] = ["method": "\(method)", "oversampling": options.oversampling, "train_s": trainSeconds,
                                       "codes_mb": Double(quantized.bytesInMemory) / 1e6, "sweep": runs]
            }
            if options.filters {
                output["filtered"] = try filtered(dataset, graph: graph, space: space, query: query, context: context, options: options)
            }
        }
    }
    if options.json {
        let data = try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Recall@k and queries/s per `ef`: single-threaded (best of 3) and on `threads` threads.
func sweep(_ dataset: Dataset, options: Options, label: String,
           _ search: @escaping (Int, Int, SearchContext) -> [UInt32]) -> [[String: Any]] {
    // The searches only read shared data; each thread has its own context.
    nonisolated(unsafe) let shared = search
    var runs: [[String: Any]] = []
    let context = SearchContext(count: dataset.count)
    for ef in options.efs {
        var hits = 0
        for q in 0..<dataset.queryCount { hits += recall(search(q, ef, context), dataset.truth[q].prefix(options.k)) }
        var best = 0.0, bestCPU = 0.0
        for _ in 0..<3 {
            let t = now(), c = cpuSeconds()
            for q in 0..<dataset.queryCount { _ = search(q, ef, context) }
            best = max(best, Double(dataset.queryCount) / (now() - t))
            bestCPU = max(bestCPU, Double(dataset.queryCount) / max(1e-9, cpuSeconds() - c))
        }
        // All threads: each takes the next query.
        let threads = max(1, options.threads), count = dataset.queryCount
        let t = now()
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            let own = SearchContext(count: dataset.count)
            for q in stride(from: worker, to: count, by: threads) { _ = shared(q, ef, own) }
        }
        let all = Double(count) / (now() - t)
        let r = Double(hits) / Double(dataset.queryCount * options.k)
        log(String(format: "%@ ef %5d: recall@%d %.4f, %8.0f queries/s (1 thread), %8.0f (%d threads)", label, ef, options.k, r, best, all, threads))
        runs.append(["ef": ef, "recall": r, "qps": best, "cpu_qps": bestCPU, "qps_all": all])
    }
    return runs
}

/// Filtered queries, planned per filter as a segment plans them.
func filtered(_ dataset: Dataset, graph: HNSWGraph, space: VectorSpace, query: (Int) -> UnsafePointer<Float>,
              context: SearchContext, options: Options) throws -> [String: Any] {
    let threshold = options.fullScanThresholdKB * 1024 / (dataset.dimension * 4)
    var result: [String: Any] = [:]
    let queryCount = min(options.filterQueries, dataset.queryCount)
    for filter in try dataset.filters() {
        let matching = (0..<UInt32(dataset.count)).filter { filter.passes[Int($0)] }
        let exactScan = matching.count <= threshold
        let passes = filter.passes
        func search(_ q: Int, ef: Int, acorn: Bool) -> [UInt32] {
            if exactScan {
                var scores = [Float](repeating: 0, count: matching.count)
                quiver_score_batch_f32(space.metric.kernelMetric, query(q), space.base, matching, matching.count, space.dimension, &scores)
                let sign: Float = space.metric == .dot ? -1 : 1
                var best: [Neighbor] = []
                for (i, point) in matching.enumerated() {
                    let d = sign * scores[i]
                    if best.count < options.k || d < best[best.count - 1].distance {
                        let at = best.firstIndex { $0.distance > d } ?? best.count
                        best.insert(Neighbor(distance: d, point: point), at: at)
                        if best.count > options.k { best.removeLast() }
                    }
                }
                return best.map(\.point)
            }
            let accept = AcceptIf { passes[Int($0)] }
            if acorn { return graph.searchACORN(FloatScorer(space: space, query: query(q)), k: options.k, ef: ef, filter: accept, context: context).map(\.point) }
            return graph.search(query(q), k: options.k, ef: ef, space: space, filter: accept, context: context).map(\.point)
        }
        var runs: [[String: Any]] = []
        // Through the graph: the plain filtered walk, then ACORN's (`params.acorn`).
        let modes = exactScan ? [(ef: options.filterEfs.first ?? 64, acorn: false)]
            : [false, true].flatMap { acorn in options.filterEfs.map { (ef: $0, acorn: acorn) } }
        for (ef, acorn) in modes {
            var hits = 0, total = 0
            for q in 0..<queryCount {
                let truth = filter.truth[q].prefix(options.k)
                hits += recall(search(q, ef: ef, acorn: acorn), truth)
                total += truth.filter { $0 >= 0 }.count
            }
            var best = 0.0
            for _ in 0..<3 {
                let t = now()
                for q in 0..<queryCount { _ = search(q, ef: ef, acorn: acorn) }
                best = max(best, Double(queryCount) / (now() - t))
            }
            let r = Double(hits) / Double(max(1, total))
            let mode = exactScan ? "quiver-exact" : acorn ? "quiver-acorn" : "quiver-hnsw"
            log(String(format: "%@ (%.4f): ef %d %@ recall %.4f, %.0f queries/s", filter.name, filter.selectivity, ef, mode, r, best))
            runs.append(["ef": ef, "mode": mode, "recall": r, "qps": best])
        }
        result[filter.name] = ["selectivity": filter.selectivity, "runs": runs]
    }
    return result
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "engine": try runEngine(try Options(Array(arguments.dropFirst())))
    case "rest": try runREST(try RESTOptions(Array(arguments.dropFirst())))
    case "grpc": try await runGRPCComparison(try RESTOptions(Array(arguments.dropFirst())))
    case "json": try runJSONBench()
    case "service": try await runService(Array(arguments.dropFirst()))
    case "merge": try runMerge(try Options(Array(arguments.dropFirst())))
    default:
        log("usage: quiver-bench engine --data DIR [--m 16] [--ef-construct 100] [--threads T] [--k 10] [--ef 10,20,...] [--json] [--filters --filter-queries N --filter-ef 64,128] [--payload-m M] [--quantization scalar|binary|pq8 --oversampling 2]")
        log("       quiver-bench rest --url URL --data DIR [--collection bench] [--clients 4] [--batch 256] [--ef 64] [--queries N] [--skip-upload] [--upload-wait false] [--seconds 10] [--write-seconds S --write-batch 100 --write-rate 20 --search-clients 4] [--on-disk] [--quantization scalar] [--json]")
        log("       quiver-bench grpc --url URL --grpc-port PORT --data DIR [--clients 8] [--batch 1000] [--ef 64] [--queries N] [--upload-wait false] [--seconds 10] [--json]")
        log("       quiver-bench merge --data DIR [--gone 0.05,0.1,0.2] [--new 0.1] [--m 16] [--ef-construct 100] [--threads T] [--ef 32,64] [--filter-queries 200]")
        log("       quiver-bench json")
        log("       quiver-bench service --data DIR [--ef 64] [--seconds 3]")
        exit(2)
    }
} catch {
    log("quiver-bench: \(error)")
    exit(1)
}
