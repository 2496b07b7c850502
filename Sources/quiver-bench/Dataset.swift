import Foundation

/// A benchmark dataset as `../shared/bench` writes it: `base.fvecs`, `queries.fvecs`, `gt.ivecs`,
/// `meta.json`, payload fields as `.npy` int32 arrays and filtered ground truth.
/// Read-only after loading, so shared by the benchmark threads.
struct Dataset: @unchecked Sendable {
    let directory: URL
    let meta: [String: Any]
    let base: [Float]
    let queries: [Float]
    let dimension: Int
    /// Exact nearest neighbours of each query (row index into base), best first.
    let truth: [[Int32]]
    var count: Int { base.count / dimension }
    var queryCount: Int { queries.count / dimension }
    var metric: String { meta["metric"] as? String ?? "l2" }

    init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        let metaData = try Data(contentsOf: self.directory.appendingPathComponent("meta.json"))
        meta = try JSONSerialization.jsonObject(with: metaData) as? [String: Any] ?? [:]
        let (base, dimension) = try Self.readVecs(self.directory.appendingPathComponent("base.fvecs"), as: Float.self)
        self.base = base
        self.dimension = dimension
        queries = try Self.readVecs(self.directory.appendingPathComponent("queries.fvecs"), as: Float.self).0
        let (gt, k) = try Self.readVecs(self.directory.appendingPathComponent("gt.ivecs"), as: Int32.self)
        truth = stride(from: 0, to: gt.count, by: k).map { Array(gt[$0..<($0 + k)]) }
    }

    /// `.fvecs` / `.ivecs`: per row an int32 dimension, then that many 4-byte elements.
    static func readVecs<T>(_ url: URL, as: T.Type) throws -> ([T], Int) {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw -> ([T], Int) in
            guard raw.count >= 4 else { return ([], 0) }
            let d = Int(raw.loadUnaligned(as: Int32.self))
            let rows = raw.count / (4 * (d + 1))
            var out: [T] = []
            out.reserveCapacity(rows * d)
            for r in 0..<rows {
                let start = r * 4 * (d + 1) + 4
                for i in 0..<d { out.append(raw.loadUnaligned(fromByteOffset: start + 4 * i, as: T.self)) }
            }
            return (out, d)
        }
    }

    /// A little-endian int32 `.npy` array (1-D or 2-D), flattened, and its shape.
    func readNpyInt32(_ name: String) throws -> ([Int32], [Int]) {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try data.withUnsafeBytes { raw -> ([Int32], [Int]) in
            guard raw.count > 10, raw[0] == 0x93 else { throw BenchError("\(name): not a .npy file") }
            let major = raw[6]
            let headerLength = major == 1 ? Int(raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self)) : Int(raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let headerStart = major == 1 ? 10 : 12
            let header = String(decoding: raw[headerStart..<(headerStart + headerLength)], as: UTF8.self)
            guard header.contains("'<i4'") else { throw BenchError("\(name): expected int32, header \(header)") }
            let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
            let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            let start = headerStart + headerLength
            let n = shape.reduce(1, *)
            var out = [Int32](repeating: 0, count: n)
            for i in 0..<n { out[i] = raw.loadUnaligned(fromByteOffset: start + 4 * i, as: Int32.self) }
            return (out, shape)
        }
    }

    /// Points per value of each integer payload field with at most 1,000 distinct values (the
    /// keyword-like fields a payload index would give blocks).
    func payloadValueBlocks() throws -> [[UInt32]] {
        var blocks: [[UInt32]] = []
        for field in (meta["payload_fields"] as? [String: Any] ?? [:]).keys.sorted() {
            let values = try readNpyInt32("payload_\(field).npy").0
            var byValue: [Int32: [UInt32]] = [:]
            for (i, v) in values.enumerated() {
                byValue[v, default: []].append(UInt32(i))
                if byValue.count > 1000 { break }
            }
            if byValue.count <= 1000 { blocks += byValue.keys.sorted().map { byValue[$0]! } }
        }
        return blocks
    }

    /// The named filters of `meta.json` with the points each passes (evaluated here from the
    /// payload arrays: `match` value/any and `range` on int fields, all under `must`).
    func filters() throws -> [(name: String, selectivity: Double, passes: [Bool], truth: [[Int32]])] {
        guard let filters = meta["filters"] as? [String: Any] else { return [] }
        var payload: [String: [Int32]] = [:]
        for field in (meta["payload_fields"] as? [String: Any] ?? [:]).keys {
            payload[field] = try readNpyInt32("payload_\(field).npy").0
        }
        var result: [(String, Double, [Bool], [[Int32]])] = []
        for (name, raw) in filters.sorted(by: { $0.key < $1.key }) {
            guard let spec = raw as? [String: Any], let filter = spec["qdrant_filter"] as? [String: Any] else { continue }
            var passes = [Bool](repeating: true, count: count)
            for case let condition as [String: Any] in filter["must"] as? [Any] ?? [] {
                guard let key = condition["key"] as? String, let values = payload[key] else { throw BenchError("filter \(name): unknown field") }
                if let match = condition["match"] as? [String: Any] {
                    let allowed = Set(((match["any"] as? [Any]) ?? [match["value"] as Any]).compactMap { ($0 as? NSNumber)?.int32Value })
                    for i in 0..<count where !allowed.contains(values[i]) { passes[i] = false }
                } else if let range = condition["range"] as? [String: Any] {
                    func bound(_ key: String) -> Double? { (range[key] as? NSNumber)?.doubleValue }
                    for i in 0..<count {
                        let v = Double(values[i])
                        if let b = bound("lt"), !(v < b) { passes[i] = false }
                        if let b = bound("lte"), !(v <= b) { passes[i] = false }
                        if let b = bound("gt"), !(v > b) { passes[i] = false }
                        if let b = bound("gte"), !(v >= b) { passes[i] = false }
                    }
                } else {
                    throw BenchError("filter \(name): unsupported condition")
                }
            }
            let (gt, shape) = try readNpyInt32(spec["gt_file"] as? String ?? "gt_filter_\(name).npy")
            let k = shape.count == 2 ? shape[1] : 1
            let truth = stride(from: 0, to: gt.count, by: k).map { Array(gt[$0..<($0 + k)]) }
            result.append((name, Double(passes.filter { $0 }.count) / Double(count), passes, truth))
        }
        return result
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
