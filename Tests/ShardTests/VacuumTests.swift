import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
@testable import Shard
import Testing

@Suite struct VacuumTests {
    func filled(_ dir: TempDir, points: Int) async throws -> LocalShard {
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        for start in stride(from: 0, to: points, by: 500) {
            _ = try await shard.update(.upsert((start..<min(points, start + 500)).map {
                PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), 1]], payload: JSONObject([("i", .int(Int64($0)))]))
            }), wait: false)
        }
        return shard
    }

    @Test func vacuumDropsDeletedPointsAndKeepsTheRest() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 1000)
        #expect(await !shard.needsVacuum(deletedThreshold: 0.2, minVectors: 100))
        _ = try await shard.update(.delete((0..<600).map { .number(UInt64($0)) }), wait: true)
        try await shard.persist()
        #expect(await shard.needsVacuum(deletedThreshold: 0.2, minVectors: 100))
        #expect(await !shard.needsVacuum(deletedThreshold: 0.2, minVectors: 5000))
        let before = await shard.segmentInfo.uuid
        try await shard.vacuum()
        #expect(await shard.segmentInfo.uuid != before)
        #expect(await shard.segment.deletedCount == 0)
        #expect(await !shard.needsVacuum(deletedThreshold: 0.2, minVectors: 100))
        #expect(await shard.optimizations.completed.first?.status == .done)
        let expected = PointRecord(id: .number(700), payload: JSONObject([("i", .int(700))]), vectors: ["a": [700, 1]])
        #expect(await shard.retrieve([.number(700), .number(5)], withPayload: .all, withVector: .all) == [expected])
        let idsFile = joinPath(dir.path, "segment", "ids.bin")
        #expect(try PosixDisk().readFile(idsFile).count == 400 * SegmentFiles.idRecordBytes)
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 400)
        #expect(await reopened.retrieve([.number(700)], withPayload: .all, withVector: .all) == [expected])
    }

    /// Writes racing a vacuum are all there afterwards, in memory and after reopening.
    @Test func writesDuringVacuumAreKept() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 20_000)
        _ = try await shard.update(.delete((0..<15_000).map { .number(UInt64($0)) }), wait: true)
        async let vacuum: Void = shard.vacuum()
        for i in 0..<200 {
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(30_000 + i)), vectors: ["a": [1, 2]])]), wait: false)
            _ = try await shard.update(.delete([.number(UInt64(15_000 + i))]), wait: false)
            _ = try await shard.update(.setPayload([.number(UInt64(19_000 + i))], payload: JSONObject([("v", .bool(true))]), key: nil), wait: false)
        }
        try await vacuum
        try await shard.persist()
        for candidate in [shard, try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)] {
            #expect(await candidate.pointCount == 5000)
            #expect(await candidate.retrieve([.number(30_199), .number(15_000), .number(15_200)], withPayload: .none, withVector: .none).map(\.id)
                == [.number(30_199), .number(15_200)])
            #expect(await candidate.retrieve([.number(19_100)], withPayload: .all, withVector: .none).first?.payload
                == JSONObject([("i", .int(19_100)), ("v", .bool(true))]))
        }
    }

    @Test func interruptedSwapIsFinishedOrUndoneAtStart() async throws {
        let dir = TempDir()
        let shard = try await filled(dir, points: 300)
        _ = try await shard.update(.delete((0..<200).map { .number(UInt64($0)) }), wait: true)
        try await shard.persist()
        let files = SegmentFiles(directory: joinPath(dir.path, "segment"), disk: PosixDisk())
        let (segment, manifest) = try #require(try files.load(dimensions: ["a": 2, "b": 3]))
        // Crash after `segment` was moved aside and before `segment.next` took its place.
        try files.writeReplacement(segment.compacted(), version: manifest.version, uuid: "replacement")
        try PosixDisk().rename(files.directory, files.oldDirectory)
        let recovered = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await recovered.pointCount == 100)
        #expect(await recovered.segmentInfo.uuid == "replacement")
        #expect(!PosixDisk().fileExists(files.oldDirectory))
        // A replacement that was still being written is discarded.
        try PosixDisk().createDirectories(files.nextDirectory)
        try PosixDisk().writeFile(joinPath(files.nextDirectory, "ids.bin"), [1, 2, 3])
        let again = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await again.pointCount == 100)
        #expect(!PosixDisk().fileExists(files.nextDirectory))
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
        let files = try PosixDisk().listDirectory(joinPath(dir.path, "segment")).filter { $0.hasPrefix("vectors-") }.sorted()
        let sizes = try files.map { try PosixDisk().readFile(joinPath(dir.path, "segment", $0)).count }
        // Names sort f16, f32, u8: 2, 4 and 1 bytes per element.
        #expect(sizes == [100 * 4 * 2, 100 * 4 * 4, 100 * 4 * 1])
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await reopened.retrieve([.number(7)], withPayload: .none, withVector: .all)
            == [PointRecord(id: .number(7), payload: nil, vectors: ["f32": [7, 0.1, 0, 1], "f16": half, "u8": bytes])])
        try await reopened.vacuum()
        #expect(await reopened.retrieve([.number(7)], withPayload: .none, withVector: .all).first?.vectors?["f16"] == half)
    }
}
