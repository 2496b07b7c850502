import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

/// A collection with a dense vector `d` and sparse vectors `s` (float32) and `h` (float16, on disk).
let sparseConfig: CollectionConfig = {
    var request = CreateCollection(vectors: .named(["d": VectorParams(size: 2, distance: .dot)]))
    request.sparseVectors = ["s": SparseVectorParams(), "h": SparseVectorParams(index: SparseIndexParams(onDisk: true, datatype: .float16))]
    return request.effectiveConfig(defaults: CollectionDefaults())
}()

/// Deterministic random sparse vectors over a small vocabulary (so dimensions are shared).
struct SparseGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }

    mutating func vector(vocabulary: UInt32 = 40, maxCount: Int = 6) -> SparseVector {
        let count = Int(next() % UInt64(maxCount + 1))
        var indices = Set<UInt32>()
        while indices.count < count { indices.insert(UInt32(next() % UInt64(vocabulary))) }
        let list = Array(indices)
        return SparseVector(indices: list, values: list.map { _ in Float(next() % 1000) / 100 - 2 })
    }
}

@Suite struct SparseVectorTests {
    @Test func sortsKeepsZerosAndScoresSharedDimensionsOnly() {
        let a = SparseVector(indices: [7, 1, 3], values: [0.5, 2, 0])
        #expect(a.indices == [1, 3, 7] && a.values == [2, 0, 0.5])
        #expect(a.dot(SparseVector(indices: [3, 7], values: [4, 2])) == 1)
        #expect(a.dot(SparseVector(indices: [3], values: [4])) == 0)
        #expect(a.dot(SparseVector(indices: [2, 9], values: [1, 1])) == nil)
        #expect(abs(SparseVector.idf(n: 10, df: 2) - Float(log(8.5 / 2.5 + 1))) < 1e-6)
    }

    @Test func parsingChecksLengthsAndDuplicatesAsValidationErrors() throws {
        let good = try PointsJSON.sparse(["indices": [3, 1], "values": [0.5, 1]], "v")
        #expect(good == SparseVector(indices: [1, 3], values: [1, 0.5]))
        do {
            _ = try PointsJSON.sparse(["indices": [1, 2], "values": [0.5]], "points[0].vector.s", validationPath: "points[0].vector.?")
            Issue.record("no error")
        } catch {
            #expect(error.isValidation && error.path == "points[0].vector.?.values")
        }
        do {
            _ = try PointsJSON.sparse(["indices": [1, 1], "values": [0.5, 1]], "q")
            Issue.record("no error")
        } catch {
            #expect(error.isValidation && error.path == "q.indices")
        }
        #expect(throws: JSONDecodingError.self) { try PointsJSON.sparse(["indices": [-1], "values": [0.5]], "q") }
        #expect(throws: JSONDecodingError.self) { try PointsJSON.sparse(["indices": [4294967296], "values": [0.5]], "q") }
    }

    @Test func walRecordsRoundTrip() throws {
        let operations: [UpdateOperation] = [
            .upsert([PointStruct(id: .number(1), vectors: ["d": [1, 2]], sparse: ["s": SparseVector(indices: [5, 2], values: [1, -0.5]), "e": SparseVector()],
                                 payload: JSONObject([("k", .int(1))]))]),
            .updateVectors([PointStruct(id: .number(2), vectors: [:], sparse: ["s": SparseVector(indices: [0], values: [3])])]),
        ]
        for operation in operations {
            #expect(try OperationCodec.decode(OperationCodec.encode(operation)) == operation)
        }
    }
}

@Suite struct SparseShardTests {
    /// The expected answer: every live point sharing a dimension, by exact dot product.
    func bruteForce(_ points: [UInt64: SparseVector], _ query: SparseVector, limit: Int) -> [(UInt64, Float)] {
        var scored: [(UInt64, Float)] = []
        for (id, vector) in points {
            if let score = vector.dot(query) { scored.append((id, score)) }
        }
        scored.sort { a, b in a.1 != b.1 ? a.1 > b.1 : a.0 < b.0 }
        return Array(scored.prefix(limit))
    }

    func check(_ shard: LocalShard, _ stored: [UInt64: SparseVector], name: String = "s", seed: UInt64, tolerance: Float = 1e-4) async {
        var generator = SparseGenerator(state: seed)
        for _ in 0..<30 {
            let query = generator.vector(maxCount: 4)
            let found = await shard.searchSparse(query, using: name, filter: nil, limit: 7, threshold: nil, withPayload: .none, withVector: .none)
            let expected = bruteForce(stored, query, limit: 7)
            #expect(found.count == expected.count)
            for (hit, want) in zip(found, expected) {
                #expect(abs(hit.score - want.1) <= tolerance * max(1, abs(want.1)), "query \(query): \(hit.id) \(hit.score) vs \(want)")
            }
        }
    }

    @Test func searchesAgreeWithBruteForceInEverySegmentKindAndAfterReopening() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: sparseConfig)
        var generator = SparseGenerator(state: 1)
        var stored: [UInt64: SparseVector] = [:]
        for start in stride(from: 0, to: 600, by: 100) {
            var points: [PointStruct] = []
            for id in UInt64(start)..<UInt64(start + 100) {
                let vector = generator.vector()
                stored[id] = vector
                points.append(PointStruct(id: .number(id), vectors: ["d": [1, 0]], sparse: ["s": vector, "h": vector]))
            }
            _ = try await shard.update(.upsert(points), wait: true)
        }
        // Some points lose their sparse vector, some are deleted.
        _ = try await shard.update(.deleteVectors((0..<20).map { .number($0) }, names: ["s"]), wait: true)
        _ = try await shard.update(.delete((20..<40).map { .number($0) }), wait: true)
        var storedH = stored
        for id in 0..<40 { stored[UInt64(id)] = nil }
        for id in 20..<40 { storedH[UInt64(id)] = nil }
        await check(shard, stored, seed: 2)
        // Sealed into an immutable segment with inverted indexes.
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        await check(shard, stored, seed: 3)
        // A change to a point of the immutable segment moves it, sparse vectors and all.
        _ = try await shard.update(.setPayload([.number(100)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        let moved = await shard.retrieve([.number(100)], withPayload: .none, withVector: .all)
        #expect(moved.first?.sparse?["s"] == stored[100] && moved.first?.sparse?["h"] == stored[100])
        await check(shard, stored, seed: 4)
        // float16 weights: scores within float16 precision.
        await check(shard, storedH, name: "h", seed: 5, tolerance: 0.15)
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: sparseConfig)
        await check(reopened, stored, seed: 6)
        let record = await reopened.retrieve([.number(101)], withPayload: .none, withVector: .named(["s"]))
        #expect(record.first?.sparse == ["s": stored[101]!] && record.first?.vectors == [:])
    }

    @Test func idfStatisticsCountLivePointsWithTheVector() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: sparseConfig)
        let points = (0..<10).map { i in
            PointStruct(id: .number(UInt64(i)), vectors: [:], sparse: ["s": i < 2 ? SparseVector() : SparseVector(indices: [1, UInt32(i)], values: [1, 1])])
        }
        _ = try await shard.update(.upsert(points), wait: true)
        _ = try await shard.update(.delete([.number(9)]), wait: true)
        var statistics = await shard.sparseStatistics("s", indices: [1, 3, 9, 50])
        #expect(statistics == SparseStatistics(vectors: 9, documentFrequency: [1: 7, 3: 1]))
        #expect(try await shard.optimize(thresholds(sealBytes: 10)))
        _ = try await shard.update(.delete([.number(8)]), wait: true)
        statistics = await shard.sparseStatistics("s", indices: [1, 3, 8])
        #expect(statistics == SparseStatistics(vectors: 8, documentFrequency: [1: 6, 3: 1]))
    }

    @Test func aDamagedIndexFileIsRebuiltFromTheVectors() async throws {
        let dir = TempDir()
        var generator = SparseGenerator(state: 9)
        var stored: [UInt64: SparseVector] = [:]
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: sparseConfig)
            let points = (0..<300).map { i in
                let vector = generator.vector()
                stored[UInt64(i)] = vector
                return PointStruct(id: .number(UInt64(i)), vectors: [:], sparse: ["s": vector])
            }
            _ = try await shard.update(.upsert(points), wait: true)
            #expect(try await shard.optimize(thresholds(sealBytes: 10)))
            try await shard.persist()
        }
        let disk = PosixDisk()
        let segments = joinPath(dir.path, "segments")
        var damaged = 0
        for segment in try disk.listDirectory(segments) {
            let path = joinPath(joinPath(segments, segment), "sparse-0-postings.bin")
            guard disk.fileExists(path) else { continue }
            var bytes = try disk.readFile(path)
            bytes[bytes.count / 2] ^= 0xFF
            try disk.writeFile(path, bytes)
            damaged += 1
        }
        #expect(damaged == 1)
        let reopened = try LocalShard(path: dir.path, disk: disk, config: sparseConfig)
        await check(reopened, stored, seed: 10)
        // Rebuilt and recorded: a third opening reads it as it is.
        let again = try LocalShard(path: dir.path, disk: disk, config: sparseConfig)
        await check(again, stored, seed: 11)
    }
}
