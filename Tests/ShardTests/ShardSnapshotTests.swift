import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

@Suite struct ShardSnapshotTests {
    /// A snapshot holds the shard as it was when taken, though the original goes on changing the
    /// files it shares with it; a shard opened from it continues the WAL's numbering.
    @Test func aSnapshotIsAConsistentCopyThatLaterWritesDoNotReach() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        func upsert(_ ids: Range<Int>, _ tag: Int) async throws {
            _ = try await shard.update(.upsert(ids.map {
                PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), Float(tag)]], payload: JSONObject([("t", .int(Int64(tag)))]))
            }), wait: false)
        }
        try await upsert(0..<600, 1)
        // Seal into an immutable segment, then delete in it (its ids.bin is rewritten in place)
        // and write to a new appendable segment.
        while try await shard.optimize(thresholds(sealBytes: 100 * bytesPerPoint)) {}
        #expect(await shard.segmentCount >= 1)
        _ = try await shard.update(.delete((0..<50).map { .number(UInt64($0)) }), wait: true)
        try await upsert(600..<700, 2)
        let expected = await shard.scroll(from: nil, limit: 10_000, withPayload: .all, withVector: .all)
        let version = try await shard.update(.setPayload([.number(60)], payload: JSONObject([("s", .bool(true))]), key: nil), wait: true)

        let copy = dir.path + "-snapshot"
        defer { try? PosixDisk().removeItem(copy) }
        try await shard.snapshot(into: copy)
        let atSnapshot = await shard.scroll(from: nil, limit: 10_000, withPayload: .all, withVector: .all)
        #expect(atSnapshot.count == expected.count)
        #expect(!PosixDisk().fileExists(joinPath(copy, "wal")))

        // The original moves on: deletions in the sealed segment, new points.
        _ = try await shard.update(.delete((100..<300).map { .number(UInt64($0)) }), wait: true)
        try await upsert(700..<800, 3)
        try await shard.persist()

        let restored = try LocalShard(path: copy, disk: PosixDisk(), config: twoVectors)
        #expect(await restored.scroll(from: nil, limit: 10_000, withPayload: .all, withVector: .all) == atSnapshot)
        #expect(try await restored.update(.delete([.number(650)]), wait: true) > version)
    }
}

extension ShardSnapshotTests {
    /// A closed shard writes nothing more: updates, persisting and optimizations are refused, and
    /// `close()` returns only once a running optimization is over.
    @Test func aClosedShardWritesNothing() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        _ = try await shard.update(.upsert((0..<300).map { PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), 1]]) }), wait: true)
        let optimizing = Task { try await shard.optimize(thresholds(sealBytes: 10 * bytesPerPoint)) }
        await shard.close()
        #expect(await !shard.isOptimizing)
        _ = try? await optimizing.value
        let files = (try? PosixDisk().listDirectory(joinPath(dir.path, "segments"))) ?? []
        await #expect(throws: ShardError.closed) { _ = try await shard.update(.delete([.number(1)]), wait: true) }
        #expect(try await !shard.optimize(thresholds(sealBytes: 10 * bytesPerPoint)))
        try await shard.persist()
        #expect(((try? PosixDisk().listDirectory(joinPath(dir.path, "segments"))) ?? []) == files)
    }
}
