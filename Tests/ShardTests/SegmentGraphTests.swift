import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
@testable import Shard
import Synchronization
import Testing
import VectorIndex

/// HNSW graphs inside immutable segments: built by the optimizer, searched by the planner's
/// vector-index branch, persisted and reloaded, rebuilt when the configuration changes.
@Suite struct SegmentGraphTests {
    static let dimension = 16
    static let points = 4000

    static func collection(m: Int = 8, onDisk: Bool = false, quantization: QuantizationConfig? = nil) -> CollectionConfig {
        var params = VectorParams(size: UInt64(dimension), distance: .euclid)
        params.quantizationConfig = quantization
        var hnsw = HnswConfigDiff()
        hnsw.m = m
        hnsw.efConstruct = 64
        hnsw.onDisk = onDisk
        params.hnswConfig = hnsw
        return config(.single(params))
    }

    /// Clustered vectors: 40 centres, points scattered around them.
    static func vector(_ i: Int) -> [Float] {
        var rng = SplitMix(seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var centre = SplitMix(seed: UInt64(i % 40) &+ 7)
        return (0..<dimension).map { _ in Float(centre.unit() * 10 + rng.unit()) }
    }

    static func payload(_ i: Int) -> JSONObject {
        JSONObject([("cat", .string("c\(i % 20)")), ("i", .int(Int64(i)))])
    }

    /// A shard with `points` points in segments of about 1000, every one indexed.
    func indexedShard(_ dir: TempDir, config: CollectionConfig = collection()) async throws -> (LocalShard, OptimizerThresholds) {
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        await shard.setPayloadSchema(["cat": PayloadFieldSchema(type: .keyword)])
        let t = thresholds(sealBytes: 1000 * Self.dimension * 4, segments: 8, storage: LocalShard.storage(for: config))
        for start in stride(from: 0, to: Self.points, by: 1000) {
            _ = try await shard.update(.upsert((start..<(start + 1000)).map {
                PointStruct(id: .number(UInt64($0)), vectors: ["": Self.vector($0)], payload: Self.payload($0))
            }), wait: false)
            while try await shard.optimize(t) {}
        }
        return (shard, t)
    }

    func ids(_ shard: LocalShard, _ query: [Float], filter: Filter? = nil, options: SearchOptions = SearchOptions()) async -> [PointID] {
        await shard.search(query, using: "", distance: .euclid, filter: filter, limit: 10, threshold: nil,
                           withPayload: .none, withVector: .none, options: options).map(\.id)
    }

    /// Mean recall@10 of the graph search against the exact scan over 40 queries.
    func recall(_ shard: LocalShard, filter: Filter? = nil, options: SearchOptions = SearchOptions()) async -> Double {
        var found = 0, wanted = 0
        for q in 0..<40 {
            let query = Self.vector(100_000 + q)
            let exact = Set(await ids(shard, query, filter: filter, options: SearchOptions(exact: true)))
            let approximate = await ids(shard, query, filter: filter, options: options)
            found += approximate.filter(exact.contains).count
            wanted += exact.count
        }
        return Double(found) / Double(max(1, wanted))
    }

    @Test func optimizerBuildsGraphsThatSearchesUse() async throws {
        let dir = TempDir()
        let (shard, t) = try await indexedShard(dir)
        let entries = await shard.segments.entries
        let immutables = entries.compactMap(\.immutable)
        #expect(immutables.count == 4)
        for segment in immutables {
            let index = try #require(segment.vectorIndexes[""])
            #expect(index.graph.count == segment.totalCount && index.spec.m == 8)
            let files = try PosixDisk().listDirectory(segment.directory)
            #expect(files.contains("hnsw-0-m8-ef64-pm8-euclid.bin"))
        }
        #expect(await shard.plannedOptimization(t) == nil, "nothing left to index")
        #expect(await recall(shard) >= 0.95)
        // Any beam answers: one as small as the limit, and a wide one.
        let narrow = await recall(shard, options: SearchOptions(hnswEf: 10)), wide = await recall(shard, options: SearchOptions(hnswEf: 200))
        #expect(wide >= 0.98)
        #expect(narrow >= 0.9 && narrow <= wide, "recall at ef 10: \(narrow), at ef 200: \(wide)")
    }

    /// A filter's candidates from a payload index are scored from the segments' rows: the same
    /// hits and scores as an exact scan, and points deleted since the index was built left out.
    @Test func indexedCandidatesAreScoredAsTheScanScoresThem() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        let filter = Filter(must: [.field(FieldCondition(key: "cat", match: .keyword("c3")))])
        func hits(_ q: Int, exact: Bool) async -> [ScoredPoint] {
            await shard.search(Self.vector(100_000 + q), using: "", distance: .euclid, filter: filter, limit: 10, threshold: nil,
                               withPayload: .none, withVector: .none, options: SearchOptions(exact: exact))
        }
        let gone = await hits(0, exact: true).prefix(3).map(\.id)
        _ = try await shard.update(.delete(gone), wait: true)
        for q in 0..<10 {
            let indexed = await hits(q, exact: false), scanned = await hits(q, exact: true)
            #expect(indexed.count == 10 && indexed.map(\.id) == scanned.map(\.id) && indexed.map(\.score) == scanned.map(\.score))
            #expect(Set(indexed.map(\.id)).isDisjoint(with: gone))
        }
    }

    @Test func filteredGraphSearchReturnsOnlyMatchesWithHighRecall() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        // 5% of the points: more than the threshold of 10, so each segment takes the graph.
        let indexed = Filter(must: [.field(FieldCondition(key: "cat", match: .keyword("c3")))])
        var range = FieldCondition(key: "i")
        range.range = .number(Bounds(lt: 2000))
        let unindexed = Filter(must: [.field(range)])
        let graphOptions = SearchOptions(fullScanThreshold: 10)
        // ACORN (`params.acorn`) for the 5% filter, not for the 50% one above its 0.4.
        let acornOptions = SearchOptions(fullScanThreshold: 10, acornMaxSelectivity: 0.4)
        for (filter, options) in [(indexed, graphOptions), (unindexed, graphOptions), (indexed, acornOptions), (unindexed, acornOptions)] {
            let r = await recall(shard, filter: filter, options: options)
            #expect(r >= 0.95, "recall \(r) with ACORN at \(options.acornMaxSelectivity ?? 0)")
            let records = await shard.retrieve(await ids(shard, Self.vector(7), filter: filter, options: options),
                                               withPayload: .all, withVector: .none)
            #expect(records.count == 10)
            for record in records {
                #expect(filter.matches(id: record.id, payload: record.payload, hasVector: { _ in true }))
            }
        }
    }

    /// Searches run off the shard's actor while writes move points out of the immutable segments
    /// (a payload change copies a point to the appendable one) and delete and restore others:
    /// every answer is one consistent view, each point once, with its true distance.
    @Test func searchesDuringWritesSeeEachPointOnce() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        let writing = WritesRunning()
        let writes = Task {
            defer { writing.flag.store(false, ordering: .releasing) }
            var rng = SplitMix(seed: 5)
            for round in 0..<150 {
                let moved = (0..<20).map { _ in PointID.number(rng.next() % UInt64(Self.points)) }
                _ = try await shard.update(.setPayload(moved, payload: JSONObject([("round", .int(Int64(round)))]), key: nil), wait: false)
                let gone = (0..<5).map { _ in Int(rng.next() % UInt64(Self.points)) }
                _ = try await shard.update(.delete(gone.map { .number(UInt64($0)) }), wait: false)
                _ = try await shard.update(.upsert(gone.map { PointStruct(id: .number(UInt64($0)), vectors: ["": Self.vector($0)]) }), wait: false)
            }
        }
        var searches = 0
        // Until the writes are over (and at least 50 searches either way).
        while writing.flag.load(ordering: .acquiring) || searches < 50 {
            for options in [SearchOptions(), SearchOptions(exact: true)] {
                let query = Self.vector(200_000 + searches)
                let found = await shard.search(query, using: "", distance: .euclid, filter: nil, limit: 10, threshold: nil,
                                               withPayload: .none, withVector: .none, options: options)
                #expect(found.count == 10)
                #expect(Set(found.map(\.id)).count == found.count, "a point twice: \(found.map(\.id))")
                for point in found {
                    guard case .number(let n) = point.id else { continue }
                    let stored = Self.vector(Int(n))
                    let distance = zip(stored, query).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                    #expect(abs(point.score - distance) <= 1e-3 * max(1, distance))
                }
                searches += 1
            }
        }
        try await writes.value
        #expect(await recall(shard) >= 0.95)
    }

    final class WritesRunning: Sendable {
        let flag = Atomic(true)
    }

    @Test func deletedPointsAreNeverReturned() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        let query = Self.vector(3)
        let first = await ids(shard, query)
        _ = try await shard.update(.delete(Array(first.prefix(5))), wait: true)
        let second = await ids(shard, query)
        #expect(Set(second).isDisjoint(with: first.prefix(5)) && second.count == 10)
    }

    @Test func graphsAreReloadedFromFilesAndRebuiltWhenTheConfigurationChanges() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        let query = Self.vector(11)
        let before = await ids(shard, query)
        try await shard.persist()
        // Reopened: the graphs come from their files, nothing is planned.
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection())
        let t = thresholds(sealBytes: 1000 * Self.dimension * 4, segments: 8, storage: LocalShard.storage(for: Self.collection()))
        #expect(await reopened.plannedOptimization(t) == nil)
        #expect(await reopened.segments.entries.compactMap(\.immutable).allSatisfy { $0.vectorIndexes[""] != nil })
        #expect(await ids(reopened, query) == before)
        // Memory-mapped graphs (`on_disk`) answer the same without a rebuild.
        let mapped = thresholds(sealBytes: t.indexingThresholdBytes, segments: 8, storage: LocalShard.storage(for: Self.collection(onDisk: true)))
        try await reopened.applyStorage(mapped.storage)
        #expect(await reopened.plannedOptimization(mapped) == nil)
        #expect(await reopened.segments.entries.compactMap(\.immutable).allSatisfy { $0.vectorIndexes[""]?.graph.owner is ByteRegion })
        #expect(await ids(reopened, query) == before)
        // Another `m`: each segment is planned for indexing, and searched by scanning until then.
        let changed = thresholds(sealBytes: t.indexingThresholdBytes, segments: 8, storage: LocalShard.storage(for: Self.collection(m: 12)))
        try await reopened.applyStorage(changed.storage)
        #expect(await reopened.plannedOptimization(changed)?.optimizer == "indexing")
        let exact = await ids(reopened, query, options: SearchOptions(exact: true))
        #expect(await ids(reopened, query) == exact)
        await reopened.triggerOptimizers()
        while try await reopened.optimize(changed) {}
        for segment in await reopened.segments.entries.compactMap(\.immutable) {
            #expect(segment.vectorIndexes[""]?.spec.m == 12)
            let graphs = try PosixDisk().listDirectory(segment.directory).filter { $0.hasPrefix("hnsw-") }
            #expect(graphs == ["hnsw-0-m12-ef64-pm12-euclid.bin"])
        }
    }

    /// Quantized codes are built with the graph; the search walks them and rescoring ranks the
    /// oversampled candidates by the float vectors; another method rebuilds the segments.
    @Test func quantizedSegmentsSearchWithRescoring() async throws {
        let dir = TempDir()
        let scalar = Self.collection(quantization: .scalar(ScalarQuantizationConfig(type: .int8, quantile: 0.99)))
        let (shard, _) = try await indexedShard(dir, config: scalar)
        for segment in await shard.segments.entries.compactMap(\.immutable) {
            let index = try #require(segment.vectorIndexes[""])
            #expect(index.quantized?.method == .scalar(quantile: 0.99))
            #expect(try PosixDisk().listDirectory(segment.directory).contains("quant-0-scalar-q990000-euclid.bin"))
        }
        #expect(await recall(shard, options: SearchOptions(oversampling: 2)) >= 0.95)
        #expect(await recall(shard, options: SearchOptions(ignoreQuantization: true)) >= 0.95)
        // Scores are always the float vectors' own.
        let query = Self.vector(5)
        let hit = try #require(await shard.search(query, using: "", distance: .euclid, filter: nil, limit: 1, threshold: nil,
                                                   withPayload: .none, withVector: .all, options: SearchOptions(rescore: false)).first)
        let stored = try #require(hit.vectors?[""])
        #expect(abs(hit.score - zip(query, stored).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()) < 1e-4)
        // Switching to binary quantization plans a rebuild that replaces the codes.
        let binary = Self.collection(quantization: .binary(BinaryQuantizationConfig()))
        let t = thresholds(sealBytes: 1000 * Self.dimension * 4, segments: 8, storage: LocalShard.storage(for: binary))
        try await shard.applyStorage(t.storage)
        #expect(await shard.plannedOptimization(t)?.optimizer == "indexing")
        while try await shard.optimize(t) {}
        for segment in await shard.segments.entries.compactMap(\.immutable) {
            #expect(segment.vectorIndexes[""]?.quantized?.method == .binary(bits: .one, asymmetric: false))
            #expect(try PosixDisk().listDirectory(segment.directory).filter { $0.hasPrefix("quant-") } == ["quant-0-binary-one-euclid.bin"])
        }
    }

    /// A write segment below the indexing threshold gets a graph once updates pause: alone below
    /// the segment budget, at the budget together with the smallest immutable segment whose graph
    /// then seeds the new one (healed when it lost a few points); not while updates go on, nor
    /// when that graph lost more than 30% of its points or is more than 16 times larger, nor after
    /// a restart before the first update.
    @Test func writeSegmentIsIndexedOnceUpdatesPause() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection())
        let storage = LocalShard.storage(for: Self.collection())
        let seal = 1000 * Self.dimension * 4
        func upsert(_ range: Range<Int>) async throws {
            _ = try await shard.update(.upsert(range.map { PointStruct(id: .number(UInt64($0)), vectors: ["": Self.vector($0)]) }), wait: false)
        }
        func paused(segments: Int = 2) -> OptimizerThresholds {
            thresholds(sealBytes: seal, segments: segments, storage: storage, tailIdle: .zero)
        }
        // Below a tenth of the threshold nothing is planned; above it, it is due at once and starts
        // once updates pause.
        try await upsert(0..<90)
        #expect(await shard.plannedOptimization(paused()) == nil)
        try await upsert(90..<300)
        let busy = thresholds(sealBytes: seal, storage: storage, tailIdle: .seconds(60))
        #expect(await shard.plannedOptimization(busy)?.optimizer == "indexing", "due, so the collection is not green")
        #expect(try await !shard.optimize(busy))
        // Updates that never pause: started after `tailPatience` of being due; alone, below the
        // segment budget.
        let patient = thresholds(sealBytes: seal, storage: storage, tailIdle: .seconds(60), tailPatience: .zero)
        #expect(await shard.plannedOptimization(patient)?.segments.map(\.points) == [300])
        #expect(try await shard.optimize(patient))
        #expect(await shard.indexedVectorCount == 300)
        // At the budget of two segments: the next write segment goes in with the indexed one.
        try await upsert(300..<1200)
        let together = try #require(await shard.plannedOptimization(paused()))
        #expect(together.segments.map(\.points).sorted() == [300, 900])
        #expect(try await shard.optimize(paused()))
        let entries = await shard.segments.entries
        #expect(entries.count == 1 && entries[0].immutable?.vectorIndexes[""]?.graph.linkedCount == 1200)
        #expect(await shard.indexedVectorCount == 1200)
        #expect(await recall(shard) >= 0.95)
        // 70 points (a tenth of a 700-point threshold) beside 1,200, more than 16 times as many:
        // such a rewrite runs once (the end of a bulk upload gets its graph), and the next one
        // within `oversizedTailInterval` waits for the threshold.
        let small = thresholds(sealBytes: 700 * Self.dimension * 4, storage: storage, tailIdle: .zero)
        try await upsert(1200..<1270)
        let oversized = try #require(await shard.plannedOptimization(small))
        #expect(oversized.segments.map(\.points).sorted() == [70, 1200] && oversized.oversizedTail)
        #expect(try await shard.optimize(small))
        #expect(await shard.indexedVectorCount == 1270)
        try await upsert(1270..<1340)
        #expect(await shard.plannedOptimization(small) == nil)
        // A graph that lost a few points still seeds: its links to them are healed.
        _ = try await shard.update(.delete([.number(5)]), wait: true)
        try await upsert(2000..<2300)
        #expect(await shard.plannedOptimization(paused())?.segments.map(\.points).sorted() == [370, 1269])
        #expect(try await shard.optimize(paused()))
        let healed = await shard.segments.entries
        #expect(healed.count == 1 && healed[0].immutable?.vectorIndexes[""]?.graph.linkedCount == 1639)
        #expect(await recall(shard) >= 0.95)
        // One that lost more than 30% does not (vacuum kept out of the way here): the write
        // segment waits for the threshold.
        _ = try await shard.update(.delete((0..<600).map { .number(UInt64($0)) }), wait: true)
        try await upsert(3000..<3300)
        func noVacuum(segments: Int) -> OptimizerThresholds {
            thresholds(sealBytes: seal, segments: segments, minVectors: .max, storage: storage, tailIdle: .zero)
        }
        #expect(await shard.plannedOptimization(noVacuum(segments: 2)) == nil)
        #expect(await shard.plannedOptimization(noVacuum(segments: 3))?.segments.map(\.points) == [300])
        // Reopened: not before the first update.
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection())
        #expect(await reopened.plannedOptimization(noVacuum(segments: 3)) == nil)
        await reopened.triggerOptimizers()
        #expect(await reopened.plannedOptimization(noVacuum(segments: 3))?.segments.map(\.points) == [300])
    }

    /// `indexed_only`: segments without a graph are searched only when few enough of their
    /// points would be scanned; indexed segments always.
    @Test func indexedOnlyLeavesOutLargeUnindexedSegments() async throws {
        let dir = TempDir()
        let (shard, _) = try await indexedShard(dir)
        _ = try await shard.update(.upsert((5000..<5300).map { PointStruct(id: .number(UInt64($0)), vectors: ["": Self.vector($0)]) }),
                                   wait: false)
        let query = Self.vector(5010)
        #expect(await ids(shard, query).first == .number(5010))
        let skipping = await ids(shard, query, options: SearchOptions(unindexedPointsMax: 299))
        #expect(skipping.count == 10 && skipping.allSatisfy { $0 < .number(5000) })
        #expect(await ids(shard, query, options: SearchOptions(unindexedPointsMax: 300)).first == .number(5010))
        // Candidates from a filter count, not the segment's size.
        let few = Filter(must: [.hasID([.number(5010), .number(3)])])
        #expect(await ids(shard, query, filter: few, options: SearchOptions(unindexedPointsMax: 2)).first == .number(5010))
    }

    @Test func damagedGraphFileIsRebuilt() async throws {
        let dir = TempDir()
        let (shard, t) = try await indexedShard(dir)
        try await shard.persist()
        let segment = try #require(await shard.segments.entries.compactMap(\.immutable).first)
        let path = joinPath(segment.directory, "hnsw-0-m8-ef64-pm8-euclid.bin")
        var bytes = try PosixDisk().readFile(path)
        bytes[bytes.count / 2] ^= 0xFF
        try PosixDisk().writeFileAtomically(path, bytes)
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection())
        let planned = await reopened.plannedOptimization(t)
        #expect(planned?.optimizer == "indexing" && planned?.segments.map(\.uuid) == [segment.directory.split(separator: "/").last.map(String.init)!])
    }
}

extension SplitMix {
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
