import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

/// Thresholds for tests: by default nothing is sealed or merged, vacuum needs 100 points, and a
/// write segment below the threshold is not started (updates never pause long enough).
func thresholds(sealBytes: Int = Int.max, segments: Int = 2, maxSegmentBytes: Int = 1 << 40, minVectors: Int = 100,
                storage: ImmutableSegment.Storage = .init(vectorsOnDisk: [:], payloadOnDisk: false),
                tailIdle: Duration = .seconds(86_400), tailPatience: Duration = .seconds(86_400)) -> OptimizerThresholds {
    OptimizerThresholds(deletedThreshold: 0.2, vacuumMinVectors: minVectors, segmentNumber: segments, maxSegmentBytes: maxSegmentBytes,
                        indexingThresholdBytes: sealBytes, enabled: true, storage: storage, tailIdle: tailIdle, tailPatience: tailPatience)
}

/// Bytes of vector storage per point of `twoVectors` (2 + 3 float32).
let bytesPerPoint = 20

@Suite struct OptimizerTests {
    func filled(_ dir: TempDir, points: Int, disk: any Disk = PosixDisk()) async throws -> LocalShard {
        let shard = try LocalShard(path: dir.path, disk: disk, config: twoVectors)
        for start in stride(from: 0, to: points, by: 500) {
            _ = try await shard.update(.upsert((start..<min(points, start + 500)).map {
                PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), 1]], payload: JSONObject([("i", .int(Int64($0)))]))
            }), wait: false)
        }
        return shard
    }

    func expected(_ i: Int) -> PointRecord {
        PointRecord(id: .number(UInt64(i)), payload: JSONObject([("i", .int(Int64(i)))]), vectors: ["a": [Float(i), 1]])
    }

    @Test func vacuumDropsDeletedPointsAndKeepsTheRest() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        #expect(await shard.plannedOptimization(thresholds()) == nil)
        _ = try await shard.update(.delete((0..<600).map { .number(UInt64($0)) }), wait: true)
        try await shard.persist()
        #expect(await shard.plannedOptimization(thresholds())?.optimizer == "vacuum")
        #expect(await shard.plannedOptimization(thresholds(minVectors: 5000)) == nil)
        let before = await shard.segmentSummaries
        #expect(try await shard.optimize(thresholds()))
        let after = await shard.segmentSummaries
        #expect(after.count == 1 && after[0].uuid != before[0].uuid && after[0].points == 400)
        #expect(await shard.segments.entries[0].deletedCount == 0)
        #expect(await shard.segments.entries[0].isAppendable, "a small vacuumed segment stays appendable")
        #expect(await shard.plannedOptimization(thresholds()) == nil)
        #expect(await shard.optimizations.completed.first?.status == .done)
        #expect(await shard.retrieve([.number(700), .number(5)], withPayload: .all, withVector: .all) == [expected(700)])
        // The old segment's directory is gone; the new one holds only the live points.
        #expect(try PosixDisk().listDirectory(joinPath(dir.path, "segments")) == [after[0].uuid])
        #expect(try PosixDisk().readFile(joinPath(dir.path, "segments", after[0].uuid, "ids.bin")).count == 400 * SegmentFiles.idRecordBytes)
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 400)
        #expect(await reopened.retrieve([.number(700)], withPayload: .all, withVector: .all) == [expected(700)])
    }

    /// However far writes run ahead of the optimizer, a write segment stops taking new points at
    /// `max_segment_size`, and a full one is due for indexing even below the indexing threshold.
    @Test func aWriteSegmentTakesNoNewPointsPastTheMaximumSegmentSize() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        let t = thresholds(maxSegmentBytes: 300 * bytesPerPoint)
        #expect(try await !shard.optimize(t))
        for start in stride(from: 0, to: 1000, by: 250) {
            _ = try await shard.update(.upsert((start..<(start + 250)).map { point(UInt64($0), [Float($0), 1]) }), wait: false)
        }
        #expect(await shard.segmentSummaries.map(\.points) == [300, 300, 300, 100])
        // A point of a full segment is still changed in place.
        _ = try await shard.update(.upsert([point(5, [0, 0])]), wait: false)
        #expect(await shard.segmentSummaries.map(\.points) == [300, 300, 300, 100])
        #expect(await shard.plannedOptimization(t)?.optimizer == "indexing")
        #expect(await shard.plannedOptimization(t)?.segments.first?.points == 300)
    }

    /// A segment whose points were all deleted is removed, not replaced by an empty one.
    @Test func vacuumOfAnEmptiedSegmentRemovesIt() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.delete((0..<1000).map { .number(UInt64($0)) }), wait: true)
        #expect(await shard.plannedOptimization(thresholds())?.optimizer == "vacuum")
        #expect(try await shard.optimize(thresholds()))
        #expect(await shard.segmentCount == 0)
        #expect(await shard.pointCount == 0)
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 0)
        #expect(try PosixDisk().listDirectory(joinPath(dir.path, "segments")).isEmpty)
    }

    /// Optimizations wait for the first update after a restart, as in Qdrant.
    @Test func optimizationsWaitForAnUpdateAfterRestart() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        _ = try await shard.update(.delete((0..<600).map { .number(UInt64($0)) }), wait: true)
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(try await !reopened.optimize(thresholds()))
        #expect(await reopened.plannedOptimization(thresholds()) != nil)
        await reopened.triggerOptimizers()
        #expect(try await reopened.optimize(thresholds()))
    }

    /// An appendable segment past the threshold becomes immutable; later ones are indexed
    /// together with it or merged, never beyond the segment budget once the work is done.
    @Test func sealingAndMergingKeepEveryPoint() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 0)
        let t = thresholds(sealBytes: 1000 * bytesPerPoint, segments: 2)
        for round in 0..<5 {
            for start in stride(from: round * 1500, to: (round + 1) * 1500, by: 500) {
                _ = try await shard.update(.upsert((start..<(start + 500)).map {
                    PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), 1]], payload: JSONObject([("i", .int(Int64($0)))]))
                }), wait: false)
            }
            while try await shard.optimize(t) {}
        }
        #expect(await shard.segmentCount <= 2)
        #expect(await shard.segments.entries.contains { !$0.isAppendable })
        #expect(await shard.pointCount == 7500)
        let names = Set(await shard.optimizations.completed.map(\.optimizer))
        #expect(names.contains("indexing"))
        try await shard.persist()
        for candidate in [shard, try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)] {
            #expect(await candidate.pointCount == 7500)
            let page = await candidate.scroll(from: .number(1499), limit: 3, withPayload: .all, withVector: .all)
            #expect(page == [expected(1499), expected(1500), expected(1501)])
        }
        let listed = try PosixDisk().listDirectory(joinPath(dir.path, "segments"))
        #expect(Set(listed) == Set(await shard.segmentSummaries.map(\.uuid)))
    }

    /// Writes racing an optimization are all there afterwards, in memory and after reopening.
    @Test func writesDuringOptimizationAreKept() async throws {
        for t in [thresholds(), thresholds(sealBytes: 1000 * bytesPerPoint)] {
            let dir = TempDir()
            let shard = try await filled(dir, points: 20_000)
            _ = try await shard.update(.delete((0..<5_000).map { .number(UInt64($0)) }), wait: true)
            async let optimized = shard.optimize(t)
            for i in 0..<200 {
                _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(30_000 + i)), vectors: ["a": [1, 2]])]), wait: false)
                _ = try await shard.update(.delete([.number(UInt64(15_000 + i))]), wait: false)
                _ = try await shard.update(.setPayload([.number(UInt64(19_000 + i))], payload: JSONObject([("v", .bool(true))]), key: nil), wait: false)
                _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(10_000 + i)), vectors: ["a": [7, 7]])]), wait: false)
            }
            #expect(try await optimized)
            try await shard.persist()
            for candidate in [shard, try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)] {
                #expect(await candidate.pointCount == 15_000)
                #expect(await candidate.retrieve([.number(30_199), .number(15_000), .number(15_200)], withPayload: .none, withVector: .none).map(\.id)
                    == [.number(30_199), .number(15_200)])
                #expect(await candidate.retrieve([.number(19_100)], withPayload: .all, withVector: .none).first?.payload
                    == JSONObject([("i", .int(19_100)), ("v", .bool(true))]))
                #expect(await candidate.retrieve([.number(10_100)], withPayload: .all, withVector: .all).first
                    == PointRecord(id: .number(10_100), payload: JSONObject(), vectors: ["a": [7, 7]]))
                #expect(await candidate.scroll(from: nil, limit: 100_000, withPayload: .none, withVector: .none).count == 15_000)
            }
        }
    }

    /// Every kind of change to a point in an immutable segment moves it to the write segment.
    @Test func changesToImmutablePointsCopyThemOnWrite() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        #expect(await shard.segments.entries.map(\.isAppendable) == [false])
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        _ = try await shard.update(.updateVectors([PointStruct(id: .number(2), vectors: ["b": [1, 2, 3]])]), wait: true)
        _ = try await shard.update(.deleteVectors([.number(3)], names: ["a"]), wait: true)
        _ = try await shard.update(.clearPayload([.number(4)]), wait: true)
        _ = try await shard.update(.upsert([point(5, [9, 9])]), wait: true)
        _ = try await shard.update(.delete([.number(6)]), wait: true)
        let want: [PointRecord] = [
            PointRecord(id: .number(1), payload: JSONObject([("i", .int(1)), ("x", .int(1))]), vectors: ["a": [1, 1]]),
            PointRecord(id: .number(2), payload: JSONObject([("i", .int(2))]), vectors: ["a": [2, 1], "b": [1, 2, 3]]),
            PointRecord(id: .number(3), payload: JSONObject([("i", .int(3))]), vectors: [:]),
            PointRecord(id: .number(4), payload: JSONObject(), vectors: ["a": [4, 1]]),
            PointRecord(id: .number(5), payload: JSONObject(), vectors: ["a": [9, 9]]),
            expected(7),
        ]
        let ids: [PointID] = (1...7).map { .number(UInt64($0)) }
        #expect(await shard.retrieve(ids, withPayload: .all, withVector: .all) == want)
        #expect(await shard.segments.entries.map(\.liveCount) == [994, 5])
        #expect(await shard.pointCount == 999)
        // Replayed from the WAL, and after a flush from the files.
        #expect(await (try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)).retrieve(ids, withPayload: .all, withVector: .all) == want)
        try await shard.persist()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.retrieve(ids, withPayload: .all, withVector: .all) == want)
        #expect(await reopened.pointCount == 999)
    }

    /// A moved point is stored at its destination before its old copy is stored as deleted, so
    /// a flush cut short between the two cannot lose it.
    @Test func movedPointsSurviveAFlushCutShort() async throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let shard = try await filled(dir, points: 10, disk: disk)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        let destination = try #require(await shard.segments.entries.first { $0.isMutable }?.uuid)
        disk.fail(.fileSync, whenPathContains: destination)
        await #expect(throws: ShardError.self) { try await shard.persist() }
        disk.heal()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 10)
        #expect(await reopened.retrieve([.number(1)], withPayload: .all, withVector: .none).first?.payload
            == JSONObject([("i", .int(1)), ("x", .int(1))]))
    }

    /// The same when the destination is a new segment: it is listed before the old copy's
    /// deletion is written, so start-up does not discard it as the leftover of a crash.
    @Test func movedPointsSurviveWhenTheirNewSegmentIsNotListedYet() async throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let shard = try await filled(dir, points: 10, disk: disk)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        _ = try await shard.update(.upsert([point(2, [9, 9])]), wait: true)
        disk.fail(.rename, whenPathContains: "segments.json")
        await #expect(throws: ShardError.self) { try await shard.persist() }
        disk.heal()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 10)
        #expect(await reopened.retrieve([.number(1), .number(2)], withPayload: .all, withVector: .all) == [
            PointRecord(id: .number(1), payload: JSONObject([("i", .int(1)), ("x", .int(1))]), vectors: ["a": [1, 1]]),
            PointRecord(id: .number(2), payload: JSONObject(), vectors: ["a": [9, 9]]),
        ])
    }

    /// A point moved twice while segments are being optimized: from an immutable segment to the
    /// write segment, which is then locked, and from there to a newer write segment. The newer
    /// segment is written first, so a flush cut short cannot leave the point deleted everywhere.
    @Test func pointsMovedOutOfALockedAppendableSegmentSurvive() async throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let shard = try await filled(dir, points: 10, disk: disk)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.upsert([point(1, [5, 5])]), wait: true)
        try await shard.persist()
        let older = try #require(await shard.segments.entries.last?.uuid)
        await shard.lock(older)
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        let newer = try #require(await shard.segments.entries.last?.uuid)
        #expect(newer != older)
        await shard.lock(newer)
        disk.fail(.fileSync, whenPathContains: newer)
        await #expect(throws: ShardError.self) { try await shard.persist() }
        disk.heal()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 10)
        #expect(await reopened.retrieve([.number(1)], withPayload: .all, withVector: .all)
            == [PointRecord(id: .number(1), payload: JSONObject([("x", .int(1))]), vectors: ["a": [5, 5]])])
    }

    /// Payload indexes of immutable segments are written beside them and read back at start-up;
    /// a damaged index file is rebuilt. Index candidates never change what a filter returns.
    @Test func payloadIndexesArePersistedWithTheirSegments() async throws {
        let schema = ["i": PayloadFieldSchema(type: .integer)]
        let equalsFive = Filter(must: [.field(FieldCondition(key: "i", match: .integer(5)))])
        let dir = TempDir(), other = TempDir()
        let shard = try await filled(dir, points: 1000)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        await shard.setPayloadSchema(schema)
        let segment = joinPath(dir.path, "segments", try #require(await shard.segmentSummaries.first?.uuid))
        let file = joinPath(segment, FieldIndex.fileName("i"))
        #expect(PosixDisk().fileExists(file))
        #expect(await shard.count(filter: equalsFive) == 1)
        #expect(await shard.segments.entries[0].candidates(equalsFive) == [5])
        #expect(await (try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors, payloadSchema: schema)).count(filter: equalsFive) == 1)

        // The file is what start-up uses: an index of another segment's payloads, put in its place,
        // proposes no candidate for i == 5.
        let stranger = try LocalShard(path: other.path, disk: PosixDisk(), config: twoVectors)
        _ = try await stranger.update(.upsert([PointStruct(id: .number(1), vectors: [:], payload: JSONObject([("i", .int(7))]))]), wait: true)
        #expect(try await stranger.optimize(thresholds(sealBytes: 1)))
        await stranger.setPayloadSchema(schema)
        let strangerSegment = joinPath(other.path, "segments", try #require(await stranger.segmentSummaries.first?.uuid))
        try PosixDisk().writeFile(file, try PosixDisk().readFile(joinPath(strangerSegment, FieldIndex.fileName("i"))))
        #expect(await (try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors, payloadSchema: schema)).count(filter: equalsFive) == 0)

        // A damaged file is rebuilt (and rewritten).
        var bytes = try PosixDisk().readFile(file)
        bytes[bytes.count / 2] ^= 0xFF
        try PosixDisk().writeFile(file, bytes)
        #expect(await (try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors, payloadSchema: schema)).count(filter: equalsFive) == 1)
        #expect(FieldIndex(decoding: try PosixDisk().readFile(file), schema: schema["i"]!) != nil)
        // Dropping the index removes its file.
        await shard.setPayloadSchema([:])
        #expect(!PosixDisk().fileExists(file))
    }

    /// Geo and text indexes of immutable segments narrow candidates (the filter decides).
    @Test func geoAndTextIndexesNarrowCandidates() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 0)
        for i in 0..<200 {
            let point = JSONValue.object(JSONObject([("lon", .double(Double(i % 20))), ("lat", .double(Double(i / 20) * 5))]))
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["a": [1, 2]], payload: JSONObject([
                ("g", point), ("t", .string(i % 3 == 0 ? "Red apple pie" : "green pear")),
            ]))]), wait: false)
        }
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        await shard.setPayloadSchema(["g": PayloadFieldSchema(type: .geo), "t": PayloadFieldSchema(type: .text)])
        let near = Filter(must: [.field({ var c = FieldCondition(key: "g"); c.geoRadius = GeoRadius(center: GeoPoint(lon: 5, lat: 10), radius: 200_000); return c }())])
        let candidates = try #require(await shard.segments.entries[0].candidates(near))
        #expect(candidates.count < 20 && candidates.contains(45))
        #expect(await shard.count(filter: near) == Set(await shard.matchingIDs(near)).count)
        #expect(await shard.matchingIDs(near).contains(.number(45)))
        let apple = Filter(must: [.field(FieldCondition(key: "t", match: .text("APPLE red")))])
        #expect(await shard.segments.entries[0].candidates(apple)?.count == 67)
        #expect(await shard.count(filter: apple) == 67)
        // Read back from their files.
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors,
                                      payloadSchema: ["g": PayloadFieldSchema(type: .geo), "t": PayloadFieldSchema(type: .text)])
        #expect(await reopened.segments.entries[0].candidates(apple)?.count == 67)
        let expected = await shard.count(filter: near)
        #expect(await reopened.count(filter: near) == expected)
    }

    /// The appendable segment's indexes follow every payload change.
    @Test func appendableIndexesAreKeptCurrent() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 0)
        await shard.setPayloadSchema(["c": PayloadFieldSchema(type: .keyword), "n": PayloadFieldSchema(type: .integer)])
        for i in 0..<100 {
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["a": [1, 2]],
                                                            payload: JSONObject([("c", .string(i % 2 == 0 ? "even" : "odd")), ("n", .int(Int64(i)))]))]), wait: false)
        }
        let even = Filter(must: [.field(FieldCondition(key: "c", match: .keyword("even")))])
        #expect(await shard.segments.entries[0].candidates(even)?.count == 50)
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("c", .string("even"))]), key: nil), wait: false)
        _ = try await shard.update(.upsert([PointStruct(id: .number(2), vectors: ["a": [1, 2]], payload: JSONObject([("c", .array([.string("odd")]))]))]), wait: false)
        _ = try await shard.update(.clearPayload([.number(4)]), wait: false)
        _ = try await shard.update(.delete([.number(6)]), wait: false)
        // 1 became even, 2 odd, 4 lost its payload; the deleted 6 stays a candidate (the filter drops it).
        #expect(await shard.segments.entries[0].candidates(even)?.count == 49)
        #expect(await shard.count(filter: even) == 48)
        let odd = Filter(must: [.field(FieldCondition(key: "c", match: .anyStrings(["odd"])))])
        #expect(await shard.count(filter: odd) == 50)
        #expect(await shard.pointsWithValue("c") == 98)
        // Ranges narrow candidates too, following the same changes (2 and 4 lost "n", 6 is deleted).
        let small = Filter(must: [.field(FieldCondition(key: "n", range: .number(Bounds(lt: 10))))])
        let smallCandidates = await shard.segments.entries[0].candidates(small)
        #expect(smallCandidates == [0, 1, 3, 5, 6, 7, 8, 9, 10]) // bounds are inclusive here: the filter decides
        #expect(await shard.count(filter: small) == 7)
        _ = try await shard.update(.setPayload([.number(50)], payload: JSONObject([("n", .double(2.5))]), key: nil), wait: false)
        #expect(await shard.segments.entries[0].candidates(small)?.contains(50) == true)
        #expect(await shard.count(filter: small) == 8)
    }

    /// Geo and text indexes of the appendable segment narrow candidates and follow changes.
    @Test func appendableGeoAndTextIndexesAreKeptCurrent() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 0)
        await shard.setPayloadSchema(["g": PayloadFieldSchema(type: .geo), "t": PayloadFieldSchema(type: .text)])
        for i in 0..<60 {
            let point = JSONValue.object(JSONObject([("lon", .double(Double(i))), ("lat", .double(0))]))
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["a": [1, 2]], payload: JSONObject([
                ("g", point), ("t", .string(i % 3 == 0 ? "Red apple pie" : "green pear")),
            ]))]), wait: false)
        }
        let near = Filter(must: [.field({ var c = FieldCondition(key: "g"); c.geoRadius = GeoRadius(center: GeoPoint(lon: 10, lat: 0), radius: 200_000); return c }())])
        #expect(await shard.segments.entries[0].candidates(near) == [9, 10, 11])
        let apple = Filter(must: [.field(FieldCondition(key: "t", match: .text("apple")))])
        #expect(await shard.segments.entries[0].candidates(apple)?.count == 20)
        _ = try await shard.update(.setPayload([.number(0)], payload: JSONObject([("t", .string("pear")), ("g", .null)]), key: nil), wait: false)
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("t", .string("apple"))]), key: nil), wait: false)
        _ = try await shard.update(.setPayload([.number(2)], payload: JSONObject([("g", .object(JSONObject([("lon", .double(10.5)), ("lat", .double(0))])))]), key: nil), wait: false)
        #expect(await shard.segments.entries[0].candidates(apple)?.count == 20)
        #expect(await shard.segments.entries[0].candidates(apple)?.first == 1)
        #expect(await shard.segments.entries[0].candidates(near) == [2, 9, 10, 11])
        #expect(await shard.count(filter: apple) == 20)
    }

    /// A crash can leave a moved point live in two segments; the newer copy wins at start-up.
    @Test func duplicatesAfterACrashResolveToTheNewerCopy() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 10)
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        _ = try await shard.update(.setPayload([.number(1)], payload: JSONObject([("x", .int(1))]), key: nil), wait: true)
        var set = await shard.segments
        // Undo the old copy's deletion, as if it had not reached the disk.
        let old = set.entries[0].immutable!
        set.entries[0].immutable = try ImmutableSegment.load(directory: old.directory, disk: PosixDisk(), dimensions: old.dimensions,
                                                             datatypes: [:], storage: old.storage)
        #expect(set.liveCount == 11)
        set.removeDuplicates()
        #expect(set.liveCount == 10)
        let (segment, offset) = try #require(set.find(.number(1)))
        #expect(set.entries[segment].isAppendable)
        #expect(set.entries[segment].record(at: offset, withPayload: .all, withVector: .none).payload == JSONObject([("i", .int(1)), ("x", .int(1))]))
    }

    /// An optimization whose result cannot be listed changes nothing; a replacement that was not
    /// listed before a crash is removed at start-up.
    @Test func failedOrInterruptedOptimizationsLeaveTheShardAsItWas() async throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let shard = try await filled(dir, points: 1000, disk: disk)
        try await shard.persist()
        let before = await shard.segmentSummaries
        disk.fail(.rename, whenPathContains: "segments.json")
        await #expect(throws: ShardError.self) { try await shard.optimize(thresholds(sealBytes: 100)) }
        disk.heal()
        #expect(await shard.segmentSummaries == before)
        #expect(await shard.optimizerError != nil)
        #expect(await shard.optimizations.completed.last?.status != .done)
        #expect(try PosixDisk().listDirectory(joinPath(dir.path, "segments")) == before.map(\.uuid))
        _ = try await shard.update(.upsert([point(1, [5, 5])]), wait: true)
        #expect(await shard.retrieve([.number(1)], withPayload: .none, withVector: .all).first?.vectors == ["a": [5, 5]])
        // Now a crash between writing a replacement and listing it.
        let set = await shard.segments
        let stray = joinPath(dir.path, "segments", "stray")
        try ImmutableSegment.write(from: [set.entries[0].data], directory: stray, disk: PosixDisk(), datatypes: [:], version: 1, uuid: "stray")
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(!PosixDisk().fileExists(stray))
        #expect(await reopened.pointCount == 1000)
        #expect(await reopened.retrieve([.number(1)], withPayload: .none, withVector: .all).first?.vectors == ["a": [5, 5]])
        #expect(try await shard.optimize(thresholds(sealBytes: 100)))
        #expect(await shard.optimizerError == nil)
    }

    /// `on_disk` vectors and `on_disk_payload` are memory-mapped; otherwise copied into memory.
    /// Switching reopens the files without rewriting them.
    @Test func sampledPayloadSizesEstimateTheExactOnes() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        // Every third point deleted: a sample of every 15th offset alone would find none alive.
        _ = try await shard.update(.delete((0..<334).map { .number(UInt64($0 * 3)) }), wait: true)
        let exact = await shard.storedSizes(payloads: .exact)
        let sampled = await shard.storedSizes(payloads: .sampled(64))
        #expect(exact.points == 666 && sampled.points == 666 && sampled.vectorBytes == exact.vectorBytes)
        #expect(exact.payloadBytes > 666)
        #expect(abs(sampled.payloadBytes - exact.payloadBytes) <= exact.payloadBytes / 10, "\(sampled.payloadBytes) vs \(exact.payloadBytes)")
        #expect(await shard.storedSizes(payloads: .none).payloadBytes == 0)
    }

    @Test func storageModesReadTheSameData() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        let mapped = ImmutableSegment.Storage(vectorsOnDisk: ["a": true, "b": false], payloadOnDisk: true)
        #expect(try await shard.optimize(thresholds(sealBytes: 100, storage: mapped)))
        #expect(await shard.segments.entries[0].immutable!.storage == mapped)
        #expect(await shard.retrieve([.number(999)], withPayload: .all, withVector: .all) == [expected(999)])
        _ = try await shard.update(.delete([.number(999)]), wait: true)
        let inMemory = ImmutableSegment.Storage(vectorsOnDisk: ["a": false, "b": false], payloadOnDisk: false)
        try await shard.applyStorage(inMemory)
        #expect(await shard.segments.entries[0].immutable!.storage == inMemory)
        #expect(await shard.retrieve([.number(998), .number(999)], withPayload: .all, withVector: .all) == [expected(998)])
        #expect(await shard.pointCount == 999)
    }
}

@Suite struct DatatypeStorageTests {
    @Test func compactDatatypesAreStoredCompactlyAndExactly() async throws {
        let dir = TempDir()
        var config = CreateCollection(vectors: .named([
            "f32": VectorParams(size: 4, distance: .dot),
            "f16": { var p = VectorParams(size: 4, distance: .dot); p.datatype = .float16; return p }(),
            "u8": { var p = VectorParams(size: 4, distance: .dot); p.datatype = .uint8; return p }(),
        ])).effectiveConfig(defaults: CollectionDefaults())
        config.walConfig.walCapacityMb = 1
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        let half: [Float] = [0.5, -2, 65504, 0.0999755859375]
        let bytes: [Float] = [0, 1, 128, 255]
        for i in 0..<100 {
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["f32": [Float(i), 0.1, 0, 1], "f16": half, "u8": bytes])]), wait: false)
        }
        try await shard.persist()
        let segment = joinPath(dir.path, "segments", try #require(await shard.segmentSummaries.first?.uuid))
        let files = try PosixDisk().listDirectory(segment).filter { $0.hasPrefix("vectors-") }.sorted()
        let sizes = try files.map { try PosixDisk().readFile(joinPath(segment, $0)).count }
        // Names sort f16, f32, u8: 2, 4 and 1 bytes per element.
        #expect(sizes == [100 * 4 * 2, 100 * 4 * 4, 100 * 4 * 1])
        let want = [PointRecord(id: .number(7), payload: nil, vectors: ["f32": [7, 0.1, 0, 1], "f16": half, "u8": bytes])]
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await reopened.retrieve([.number(7)], withPayload: .none, withVector: .all) == want)
        // The same values from an immutable segment, mapped and in memory.
        await reopened.triggerOptimizers()
        let mapped = ImmutableSegment.Storage(vectorsOnDisk: ["f32": true, "f16": true, "u8": true], payloadOnDisk: true)
        #expect(try await reopened.optimize(thresholds(sealBytes: 10, storage: mapped)))
        #expect(await reopened.retrieve([.number(7)], withPayload: .none, withVector: .all) == want)
        try await reopened.applyStorage(.init(vectorsOnDisk: [:], payloadOnDisk: false))
        #expect(await reopened.retrieve([.number(7)], withPayload: .none, withVector: .all) == want)
    }
}

extension LocalShard {
    /// Locks a segment as a running optimization would.
    func lock(_ uuid: String) {
        for index in segments.entries.indices where segments.entries[index].uuid == uuid { segments.entries[index].locked = true }
    }
}
