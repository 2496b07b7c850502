import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing
import VectorIndex

/// A collection with multivectors `m` (float32, Dot) and `h` (float16, Euclid, on disk).
let multiConfig: CollectionConfig = {
    var m = VectorParams(size: 3, distance: .dot)
    m.multivectorConfig = MultiVectorConfig(comparator: .maxSim)
    var h = VectorParams(size: 3, distance: .euclid)
    h.multivectorConfig = MultiVectorConfig(comparator: .maxSim)
    h.datatype = .float16
    h.onDisk = true
    return CreateCollection(vectors: .named(["m": m, "h": h])).effectiveConfig(defaults: CollectionDefaults())
}()

@Suite struct MultiVectorTests {
    /// Deterministic multivectors of 1…4 rows, values with few bits (exact in float16).
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func vector() -> MultiVector {
            let rows = 1 + Int(next() % 4)
            return MultiVector(dimension: 3, flat: (0..<(rows * 3)).map { _ in Float(Int(next() % 17) - 8) / 4 })
        }
    }

    @Test func parsingChecksShapeAsValidationErrors() throws {
        func parse(_ vector: JSONValue) throws(JSONDecodingError) -> PointStruct {
            try PointsJSON.insertOperations(["points": [["id": 1, "vector": vector]]])[0]
        }
        #expect(try parse(["m": [[1, 2], [3, 4]]]).multi["m"] == MultiVector(dimension: 2, flat: [1, 2, 3, 4]))
        #expect(try parse([[1.5], [2]]).multi[""]?.rows == [[1.5], [2]])
        let batch = try PointsJSON.insertOperations(["batch": ["ids": [1, 2], "vectors": ["m": [[[1]], [[2], [3]]]]]])
        #expect(batch.map { $0.multi["m"]?.flat } == [[1], [2, 3]])
        for (value, message) in [(JSONValue.array([.array([]), .array([1])]), "all vectors must be non-empty"),
                                 (.array([.array([1, 2]), .array([1])]), "all vectors must have the same dimension, found vector with dimension 1")] {
            do {
                _ = try parse(["m": value])
                Issue.record("no error for \(value)")
            } catch {
                #expect(error.isValidation && error.path == "points[0].vector.?.data" && error.message == message)
            }
        }
        #expect(MultiVector(dimension: 2, flat: [1, 2.5, 3, 4]).json == [[1.0, 2.5], [3.0, 4.0]])
    }

    @Test func walRecordsRoundTrip() throws {
        let operations: [UpdateOperation] = [
            .upsert([PointStruct(id: .number(1), vectors: ["d": [1, 2]], multi: ["m": MultiVector(dimension: 2, flat: [1, 2, 3, 4])])]),
            .updateVectors([PointStruct(id: .number(2), vectors: [:], sparse: ["s": SparseVector(indices: [0], values: [3])],
                                        multi: ["m": MultiVector(dimension: 1, flat: [5])])]),
        ]
        for operation in operations {
            let bytes = OperationCodec.encode(operation)
            #expect(bytes[0] == 11 || bytes[0] == 12)
            #expect(try OperationCodec.decode(bytes) == operation)
        }
    }

    /// Every live point by max_sim, best first (ties by id), scores as users see them.
    func bruteForce(_ points: [UInt64: MultiVector], _ query: MultiVector, distance: Distance, limit: Int) -> [(UInt64, Float)] {
        let maxSim = MaxSim(distance)
        var scored: [(UInt64, Float)] = points.map { id, vector in
            (id, vector.flat.withUnsafeBufferPointer { maxSim.score(query, $0) })
        }
        scored.sort { a, b in a.1 != b.1 ? a.1 > b.1 : a.0 < b.0 }
        return scored.prefix(limit).map { ($0.0, maxSim.displayed($0.1)) }
    }

    func check(_ shard: LocalShard, _ stored: [UInt64: MultiVector], name: String, distance: Distance, seed: UInt64) async {
        var generator = Generator(state: seed)
        let maxSim = MaxSim(distance)
        for _ in 0..<20 {
            let query = generator.vector()
            let found = await shard.searchEach(name, filter: nil, limit: 5, threshold: nil, withPayload: .none, withVector: .none) { stored in
                if case .multi(let rows) = stored { maxSim.score(query, rows) } else { -.infinity }
            }
            let expected = bruteForce(stored, query, distance: distance, limit: 5)
            #expect(found.map { maxSim.displayed($0.score) } == expected.map(\.1), "query \(query.rows)")
        }
    }

    @Test func storedSearchedAndReloadedInEverySegmentKind() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: multiConfig)
        var generator = Generator(state: 1)
        var stored: [UInt64: MultiVector] = [:]
        for start in stride(from: 0, to: 300, by: 100) {
            var points: [PointStruct] = []
            for id in UInt64(start)..<UInt64(start + 100) {
                let vector = generator.vector()
                stored[id] = vector
                points.append(PointStruct(id: .number(id), vectors: [:], multi: ["m": vector, "h": vector]))
            }
            _ = try await shard.update(.upsert(points), wait: true)
        }
        _ = try await shard.update(.deleteVectors((0..<10).map { .number($0) }, names: ["m", "h"]), wait: true)
        _ = try await shard.update(.delete((10..<20).map { .number($0) }), wait: true)
        for id in 0..<20 { stored[UInt64(id)] = nil }
        await check(shard, stored, name: "m", distance: .dot, seed: 2)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        await check(shard, stored, name: "m", distance: .dot, seed: 3)
        await check(shard, stored, name: "h", distance: .euclid, seed: 4)
        // A changed point moves out of the immutable segment with its multivectors.
        let replacement = MultiVector(dimension: 3, flat: [1, 1, 1, 2, 2, 2])
        _ = try await shard.update(.updateVectors([PointStruct(id: .number(50), vectors: [:], multi: ["m": replacement])]), wait: true)
        stored[50] = replacement
        let moved = await shard.retrieve([.number(50), .number(15)], withPayload: .none, withVector: .all)
        #expect(moved.first?.multi?["m"] == replacement && moved.first?.multi?["h"] != nil && moved.first?.multi?["h"] != replacement)
        #expect(moved.count == 1)
        await check(shard, stored, name: "m", distance: .dot, seed: 5)
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: multiConfig)
        await check(reopened, stored, name: "m", distance: .dot, seed: 6)
        let record = await reopened.retrieve([.number(120)], withPayload: .none, withVector: .named(["h"]))
        #expect(record.first?.multi == ["h": stored[120]!] && record.first?.vectors == [:])
    }

    @Test func theAppendableSegmentsLogSurvivesReopening() async throws {
        let dir = TempDir()
        let vector = MultiVector(dimension: 3, flat: [1, 0, 0, 0, 1, 0])
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: multiConfig)
            _ = try await shard.update(.upsert([PointStruct(id: .number(1), vectors: [:], multi: ["m": vector]),
                                                PointStruct(id: .number(2), vectors: [:], multi: ["m": vector, "h": vector])]), wait: true)
            _ = try await shard.update(.deleteVectors([.number(2)], names: ["m"]), wait: true)
            try await shard.persist()
        }
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: multiConfig)
        let records = await reopened.retrieve([.number(1), .number(2)], withPayload: .none, withVector: .all)
        #expect(records.map(\.multi) == [["m": vector], ["h": vector]])
    }

    /// Clustered multivectors of 2…5 rows in 8 dimensions.
    static func clustered(_ i: Int) -> MultiVector {
        var rng = SplitMix(seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 3)
        var centre = SplitMix(seed: UInt64(i % 30) &+ 11)
        let centreRow = (0..<8).map { _ in Float(centre.unit() * 4) }
        let rows = 2 + Int(rng.next() % 4)
        return MultiVector(dimension: 8, flat: (0..<rows).flatMap { _ in centreRow.map { $0 + Float(rng.unit()) } })
    }

    /// A shard of 3,000 clustered, normalised multivectors `m` (Cosine) in immutable segments with
    /// graphs, and the optimizer thresholds that built them.
    static func indexedShard(_ dir: TempDir, quantization: QuantizationConfig? = nil) async throws -> (LocalShard, CollectionConfig, OptimizerThresholds) {
        var params = VectorParams(size: 8, distance: .cosine)
        params.multivectorConfig = MultiVectorConfig(comparator: .maxSim)
        params.quantizationConfig = quantization
        var hnsw = HnswConfigDiff()
        hnsw.m = 8
        hnsw.efConstruct = 64
        params.hnswConfig = hnsw
        let config = CreateCollection(vectors: .named(["m": params])).effectiveConfig(defaults: CollectionDefaults())
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        let t = thresholds(sealBytes: 1000, segments: 8, storage: LocalShard.storage(for: config))
        for start in stride(from: 0, to: 3000, by: 1000) {
            _ = try await shard.update(.upsert((start..<(start + 1000)).map {
                let vector = Self.clustered($0).mapRows { row in
                    let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    return row.map { $0 / norm }
                }
                return PointStruct(id: .number(UInt64($0)), vectors: [:], multi: ["m": vector], payload: JSONObject([("i", .int(Int64($0 % 2)))]))
            }), wait: false)
            while try await shard.optimize(t) {}
        }
        return (shard, config, t)
    }

    /// A query like the stored points, normalised.
    static func clusteredQuery(_ q: Int) -> MultiVector {
        clustered(100_000 + q).mapRows { row in
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
    }

    @Test func theGraphOverMultivectorsFindsWhatTheScanFinds() async throws {
        let dir = TempDir()
        let (shard, config, _) = try await Self.indexedShard(dir)
        let telemetry = await shard.telemetry()
        #expect(telemetry.segments.reduce(0) { $0 + ($1.indexedVectors["m"] ?? 0) } == 3000)
        var found = 0
        for q in 0..<30 {
            let query = Self.clusteredQuery(q)
            let graph = await shard.searchMulti(query, using: "m", distance: .cosine, filter: nil, limit: 10, threshold: nil,
                                                withPayload: .none, withVector: .none)
            let exact = await shard.searchMulti(query, using: "m", distance: .cosine, filter: nil, limit: 10, threshold: nil,
                                                withPayload: .none, withVector: .none, options: SearchOptions(exact: true))
            #expect(graph.count == 10)
            found += Set(graph.map(\.id)).intersection(exact.map(\.id)).count
            // Scores of what the graph found are exact max_sim scores.
            for point in graph {
                if let same = exact.first(where: { $0.id == point.id }) { #expect(abs(same.score - point.score) < 1e-5) }
            }
        }
        #expect(Double(found) / 300 >= 0.9, "recall \(Double(found) / 300)")
        // The graph files are loaded again after a restart.
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        let again = await reopened.telemetry()
        #expect(again.segments.reduce(0) { $0 + ($1.indexedVectors["m"] ?? 0) } == 3000)
    }

    /// `indexed_only` leaves out a large unindexed segment of multivectors as of dense ones, and
    /// `acorn` walks the multivector graphs for a selective filter, with the recall of a scan.
    @Test func indexedOnlyAndACORNServeMultivectors() async throws {
        let dir = TempDir()
        let (shard, _, _) = try await Self.indexedShard(dir)
        func search(_ query: MultiVector, filter: Filter? = nil, _ options: SearchOptions) async -> [PointID] {
            await shard.searchMulti(query, using: "m", distance: .cosine, filter: filter, limit: 10, threshold: nil,
                                    withPayload: .none, withVector: .none, options: options).map(\.id)
        }
        let added = (5000..<5300).map { PointStruct(id: .number(UInt64($0)), vectors: [:], multi: ["m": Self.clusteredQuery($0)]) }
        _ = try await shard.update(.upsert(added), wait: false)
        let query = Self.clusteredQuery(5010)
        #expect(await search(query, SearchOptions()).first == .number(5010))
        let skipping = await search(query, SearchOptions(unindexedPointsMax: 299))
        #expect(skipping.count == 10 && skipping.allSatisfy { $0 < .number(5000) })
        #expect(await search(query, SearchOptions(unindexedPointsMax: 300)).first == .number(5010))
        // One point in 50 of the indexed ones: each segment walks its graph (the full-scan
        // threshold is lower), by ACORN.
        let rare = Filter(must: [.hasID(Set(stride(from: 0, to: 3000, by: 50).map { PointID.number(UInt64($0)) }))])
        let acorn = SearchOptions(fullScanThreshold: 5, hnswEf: 16, acornMaxSelectivity: 0.4)
        var found = 0
        for q in 0..<30 {
            let approximate = await search(Self.clusteredQuery(q), filter: rare, acorn)
            let exact = await search(Self.clusteredQuery(q), filter: rare, SearchOptions(exact: true))
            #expect(approximate.count == 10 && approximate.allSatisfy { if case .number(let n) = $0 { n % 50 == 0 } else { false } })
            found += Set(approximate).intersection(exact).count
        }
        #expect(Double(found) / 300 >= 0.95, "recall \(Double(found) / 300)")
    }

    @Test(arguments: [
        QuantizationConfig.scalar(ScalarQuantizationConfig(type: .int8, quantile: 0.99)),
        .binary(BinaryQuantizationConfig(encoding: .twoBits)),
        .product(ProductQuantizationConfig(compression: .x4)),
    ])
    func quantizedRowsChooseTheCandidatesAndFloatRowsScoreThem(_ quantization: QuantizationConfig) async throws {
        let dir = TempDir()
        let (shard, config, t) = try await Self.indexedShard(dir, quantization: quantization)
        func codeFiles() throws -> [String] {
            try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.contains("/quant-multi-0-") }
        }
        #expect(try !codeFiles().isEmpty)
        func recall(_ shard: LocalShard, _ options: SearchOptions) async -> Double {
            var found = 0
            for q in 0..<30 {
                let query = Self.clusteredQuery(q)
                let approximate = await shard.searchMulti(query, using: "m", distance: .cosine, filter: nil, limit: 10, threshold: nil,
                                                          withPayload: .none, withVector: .none, options: options)
                let exact = await shard.searchMulti(query, using: "m", distance: .cosine, filter: nil, limit: 10, threshold: nil,
                                                    withPayload: .none, withVector: .none, options: SearchOptions(exact: true))
                found += Set(approximate.map(\.id)).intersection(exact.map(\.id)).count
                for point in approximate {
                    if let same = exact.first(where: { $0.id == point.id }) { #expect(abs(same.score - point.score) < 1e-5) }
                }
            }
            return Double(found) / 300
        }
        let rescored = await recall(shard, SearchOptions(oversampling: 3))
        #expect(rescored >= 0.85, "recall with codes and rescoring \(rescored)")
        // Ignoring the codes walks the float rows: a different path to comparable results.
        let floats = await recall(shard, SearchOptions(ignoreQuantization: true))
        #expect(floats >= 0.9, "recall on the float rows \(floats)")
        // The codes are loaded at a restart (nothing to rebuild); a damaged file is rebuilt.
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await reopened.telemetry().segments.reduce(0) { $0 + ($1.indexedVectors["m"] ?? 0) } == 3000)
        await reopened.triggerOptimizers()
        #expect(try await !reopened.optimize(t))
        #expect(await recall(reopened, SearchOptions(oversampling: 3)) == rescored)
        for file in try codeFiles() {
            let path = dir.path + "/" + file
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        try await reopened.persist()
        let repaired = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await repaired.telemetry().segments.allSatisfy { $0.indexedVectors["m"] == 0 })
        await repaired.triggerOptimizers()
        #expect(try await repaired.optimize(t))
        while try await repaired.optimize(t) {}
        #expect(await recall(repaired, SearchOptions(oversampling: 3)) >= 0.85)
    }
}

@Suite struct NamedVectorChangeTests {
    static func config(dense: [String: UInt64], sparse: [String] = []) -> CollectionConfig {
        var request = CreateCollection(vectors: .named(dense.mapValues { VectorParams(size: $0, distance: .dot) }))
        request.sparseVectors = Dictionary(uniqueKeysWithValues: sparse.map { ($0, SparseVectorParams()) })
        return request.effectiveConfig(defaults: CollectionDefaults())
    }

    @Test func addedVectorsStartEmptyAndRemovedOnesNeverComeBack() async throws {
        let dir = TempDir()
        let first = Self.config(dense: ["a": 2], sparse: ["s"])
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: first)
        _ = try await shard.update(.upsert((0..<200).map {
            PointStruct(id: .number(UInt64($0)), vectors: ["a": [1, Float($0)]], sparse: ["s": SparseVector(indices: [1], values: [1])])
        }), wait: true)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.upsert([PointStruct(id: .number(500), vectors: ["a": [2, 2]], sparse: ["s": SparseVector(indices: [2], values: [1])])]),
                                   wait: true)
        // Add `b`, write it to a point of each segment kind, drop `a` and `s`.
        let second = Self.config(dense: ["a": 2, "b": 3], sparse: ["s"])
        try await shard.setVectors(second)
        _ = try await shard.update(.updateVectors([PointStruct(id: .number(7), vectors: ["b": [1, 2, 3]]),
                                                   PointStruct(id: .number(500), vectors: ["b": [3, 2, 1]])]), wait: true)
        let third = Self.config(dense: ["b": 3])
        try await shard.setVectors(third)
        var records = await shard.retrieve([.number(7), .number(8), .number(500)], withPayload: .none, withVector: .all)
        #expect(records.map(\.vectors) == [["b": [1, 2, 3]], [:], ["b": [3, 2, 1]]])
        #expect(records.allSatisfy { ($0.sparse ?? [:]).isEmpty })
        // An operation from before the removal, replayed, leaves the removed vectors out.
        _ = try await shard.update(.upsert([PointStruct(id: .number(9), vectors: ["a": [5, 5], "b": [0, 0, 1]], sparse: ["s": SparseVector(indices: [3], values: [1])])]),
                                   wait: true)
        try await shard.persist()
        // Reopened with `a` and `s` created again: empty, not the old data back.
        let fourth = Self.config(dense: ["a": 2, "b": 3], sparse: ["s"])
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: fourth)
        records = await reopened.retrieve([.number(7), .number(9), .number(500)], withPayload: .none, withVector: .all)
        #expect(records.map(\.vectors) == [["b": [1, 2, 3]], ["b": [0, 0, 1]], ["b": [3, 2, 1]]])
        #expect(records.allSatisfy { ($0.sparse ?? [:]).isEmpty })
        #expect(await reopened.search([1, 0], using: "a", distance: .dot, filter: nil, limit: 5, threshold: nil, withPayload: .none, withVector: .none).isEmpty)
    }

    @Test func aVectorOfAnotherSpaceUnderTheSameNameStartsEmpty() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.config(dense: ["a": 2, "z": 1]))
        _ = try await shard.update(.upsert((0..<150).map { PointStruct(id: .number(UInt64($0)), vectors: ["a": [1, Float($0)], "z": [1]]) }), wait: true)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.upsert([PointStruct(id: .number(900), vectors: ["a": [3, 3], "z": [2]])]), wait: true)
        // `a` removed and created with 3 dimensions while this shard saw neither step.
        try await shard.setVectors(Self.config(dense: ["a": 3, "z": 1]))
        var records = await shard.retrieve([.number(5), .number(900)], withPayload: .none, withVector: .all)
        #expect(records.map(\.vectors) == [["z": [1]], ["z": [2]]])
        _ = try await shard.update(.upsert([PointStruct(id: .number(901), vectors: ["a": [1, 2, 3]])]), wait: true)
        // A replayed operation with the old dimension is left out, not a crash.
        _ = try await shard.update(.upsert([PointStruct(id: .number(902), vectors: ["a": [1, 2], "z": [4]])]), wait: true)
        try await shard.persist()
        // Opened with yet another space for `a`: files of the old ones are not read as it.
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.config(dense: ["a": 2, "z": 1]))
        records = await reopened.retrieve([.number(5), .number(901), .number(902)], withPayload: .none, withVector: .all)
        #expect(records.map(\.vectors) == [["z": [1]], [:], ["z": [4]]])
    }
}
