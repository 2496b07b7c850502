import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

final class TempDir {
    let path = NSTemporaryDirectory() + "quiver-shard-\(UUID().uuidString)"
    deinit { try? PosixDisk().removeItem(path) }
}

func config(_ vectors: VectorsConfig) -> CollectionConfig {
    CreateCollection(vectors: vectors).effectiveConfig(defaults: CollectionDefaults())
}

let twoVectors = config(.named(["a": VectorParams(size: 2, distance: .dot), "b": VectorParams(size: 3, distance: .euclid)]))

func point(_ id: UInt64, _ a: [Float]? = nil, payload: JSONObject? = nil) -> PointStruct {
    PointStruct(id: .number(id), vectors: a.map { ["a": $0] } ?? [:], payload: payload)
}

@Suite struct OperationCodecTests {
    @Test func roundTrips() throws {
        let operations: [UpdateOperation] = [
            .upsert([
                PointStruct(id: .number(UInt64.max), vectors: ["": [1.5, -0.0, .leastNonzeroMagnitude]], payload: JSONObject([("k", .double(1.0)), ("n", .array([.null]))])),
                PointStruct(id: PointID(uuidString: "550e8400-e29b-41d4-a716-446655440000")!, vectors: ["a": [], "ü": [2]], payload: nil),
            ]),
            .delete([.number(0), .uuid(1, 2)]),
            .upsert([]),
            .updateVectors([PointStruct(id: .number(3), vectors: ["a": [1, 2]])]),
            .deleteVectors([.number(3)], names: ["a", "b"]),
            .setPayload([.number(1)], payload: JSONObject([("k", .string("v"))]), key: "x.y"),
            .setPayload([.number(1)], payload: JSONObject(), key: nil),
            .overwritePayload([.number(2)], payload: JSONObject([("z", .bool(true))])),
            .deletePayload([.number(2), .number(5)], keys: ["a.b", "c[]"]),
            .clearPayload([.uuid(7, 8)]),
        ]
        for operation in operations {
            #expect(try OperationCodec.decode(OperationCodec.encode(operation)) == operation)
        }
    }

    @Test func truncatedRecordsAreErrors() {
        let bytes = OperationCodec.encode(.upsert([point(1, [1, 2], payload: JSONObject([("x", .int(1))]))]))
        for cut in 0..<bytes.count {
            #expect(throws: OperationCodec.DecodeError.self) { try OperationCodec.decode(Array(bytes[0..<cut])) }
        }
    }
}

@Suite struct AppendableSegmentTests {
    /// Payload bytes from a damaged file read as no payload (the start-up fuzz test met a node
    /// that stopped on them).
    @Test func damagedPayloadBytesReadAsNone() {
        let payload = JSONObject([("n", .int(7))])
        #expect(AppendableSegment.decode(AppendableSegment.encode(payload)) == payload)
        let bytes = AppendableSegment.encode(payload)!
        for damaged in [Array(bytes.dropLast()), Array("[1,2]".utf8), [0xff, 0x00], []] {
            #expect(AppendableSegment.decode(damaged) == nil)
        }
    }

    @Test func upsertReplacesAndDeleteRemoves() {
        var segment = AppendableSegment(dimensions: ["a": 2])
        segment.apply(.upsert([point(1, [1, 2], payload: JSONObject([("v", .int(1))])), point(2, [3, 4])]), version: 1)
        segment.apply(.upsert([point(1, [5, 6])]), version: 2)
        #expect(segment.record(.number(1), withPayload: .all, withVector: .all) == PointRecord(id: .number(1), payload: JSONObject(), vectors: ["a": [5, 6]]))
        segment.apply(.delete([.number(2)]), version: 3)
        #expect(segment.liveCount == 1)
        #expect(segment.deletedCount == 1)
        #expect(segment.record(.number(2), withPayload: .all, withVector: .none) == nil)
    }

    @Test func replayIsIdempotent() {
        let operations: [(UpdateOperation, UInt64)] = [
            (.upsert([point(1, [1, 1]), point(2, [2, 2])]), 1),
            (.delete([.number(1)]), 2),
            (.upsert([point(2, [9, 9]), point(3, [3, 3])]), 3),
            (.delete([.number(4)]), 4),
            (.upsert([point(4, [4, 4])]), 5),
        ]
        var once = AppendableSegment(dimensions: ["a": 2])
        for (op, v) in operations { once.apply(op, version: v) }
        var twice = once
        for (op, v) in operations { twice.apply(op, version: v) }
        let ids = once.sortedIDs(from: nil)
        #expect(ids == [.number(2), .number(3), .number(4)])
        #expect(twice.sortedIDs(from: nil) == ids)
        for id in ids {
            #expect(twice.record(id, withPayload: .all, withVector: .all) == once.record(id, withPayload: .all, withVector: .all))
        }
        // An old upsert replayed after a newer delete does not bring the point back.
        twice.apply(.upsert([point(1, [7, 7])]), version: 1)
        #expect(!twice.contains(.number(1)))
    }

    @Test func payloadAndVectorOperationsReplayIdempotently() {
        let operations: [(UpdateOperation, UInt64)] = [
            (.upsert([PointStruct(id: .number(1), vectors: ["a": [1, 1]], payload: JSONObject([("n", .int(1))]))]), 1),
            (.setPayload([.number(1)], payload: JSONObject([("m", .int(2))]), key: nil), 2),
            (.deletePayload([.number(1)], keys: ["n"]), 3),
            (.updateVectors([PointStruct(id: .number(1), vectors: ["a": [5, 5]])]), 4),
            (.setPayload([.number(1)], payload: JSONObject([("o", .int(3))]), key: "sub"), 5),
        ]
        var once = AppendableSegment(dimensions: ["a": 2])
        for (op, v) in operations { once.apply(op, version: v) }
        var twice = once
        for (op, v) in operations { twice.apply(op, version: v) }
        let expected = PointRecord(id: .number(1), payload: JSONObject([("m", .int(2)), ("sub", .object(JSONObject([("o", .int(3))])))]),
                                   vectors: ["a": [5, 5]])
        #expect(once.record(.number(1), withPayload: .all, withVector: .all) == expected)
        #expect(twice.record(.number(1), withPayload: .all, withVector: .all) == expected)
        twice.apply(.deleteVectors([.number(1)], names: ["a"]), version: 6)
        twice.apply(.clearPayload([.number(1)]), version: 7)
        #expect(twice.record(.number(1), withPayload: .all, withVector: .all) == PointRecord(id: .number(1), payload: JSONObject(), vectors: [:]))
    }

    @Test func selectorsPickPayloadAndVectors() {
        var segment = AppendableSegment(dimensions: ["a": 2, "b": 1])
        let payload = JSONObject([("keep", .int(1)), ("drop", .int(2)), ("nested", .object(JSONObject([("x", .int(3))])))])
        segment.apply(.upsert([PointStruct(id: .number(1), vectors: ["a": [1, 2], "b": [3]], payload: payload)]), version: 1)
        let include = segment.record(.number(1), withPayload: .include(["keep", "nested.x", "nested.missing"]), withVector: .named(["b"]))
        #expect(include?.payload == JSONObject([("keep", .int(1)), ("nested", .object(JSONObject([("x", .int(3))])))]))
        #expect(include?.vectors == ["b": [3]])
        let exclude = segment.record(.number(1), withPayload: .exclude(["drop", "nested.x"]), withVector: .none)
        #expect(exclude?.payload == JSONObject([("keep", .int(1)), ("nested", .object(JSONObject()))]))
        #expect(exclude?.vectors == nil)
    }

    @Test func scrollOrderPutsNumbersBeforeUUIDs() {
        var segment = AppendableSegment(dimensions: [:])
        let uuid = PointID(uuidString: "00000000-0000-0000-0000-000000000001")!
        segment.apply(.upsert([PointStruct(id: uuid, vectors: [:]), point(10), point(2)]), version: 1)
        #expect(segment.sortedIDs(from: nil) == [.number(2), .number(10), uuid])
        #expect(segment.sortedIDs(from: .number(3)) == [.number(10), uuid])
    }
}

@Suite struct LocalShardTests {
    @Test func reopenReplaysTheWAL() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        var last: UInt64 = 0
        for i in 0..<100 {
            last = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["a": [Float(i), 1], "b": [1, 2, Float(i)]],
                                                               payload: JSONObject([("i", .int(Int64(i)))]))]), wait: i % 10 == 0)
        }
        _ = try await shard.update(.delete((0..<50).map { .number(UInt64($0 * 2)) }), wait: true)
        #expect(last == 100)
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.pointCount == 50)
        let records = await reopened.retrieve([.number(7), .number(8)], withPayload: .all, withVector: .all)
        #expect(records == [PointRecord(id: .number(7), payload: JSONObject([("i", .int(7))]), vectors: ["a": [7, 1], "b": [1, 2, 7]])])
        let page = await reopened.scroll(from: .number(90), limit: 3, withPayload: .none, withVector: .none)
        #expect(page.map(\.id) == [.number(91), .number(93), .number(95)])
    }

    @Test func persistedSegmentLoadsAndTheWALIsTruncated() async throws {
        let dir = TempDir()
        var config = twoVectors
        config.walConfig.walCapacityMb = 1
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        let padding = String(repeating: "p", count: 3000)
        for i in 0..<3000 {
            _ = try await shard.update(.upsert([PointStruct(id: .number(UInt64(i)), vectors: ["a": [Float(i), 0], "b": [1, 1, Float(i)]],
                                                             payload: i % 2 == 0 ? JSONObject([("i", .int(Int64(i))), ("pad", .string(padding))]) : nil)]), wait: false)
        }
        _ = try await shard.update(.delete([.number(5), .number(6)]), wait: true)
        _ = try await shard.update(.setPayload([.number(7)], payload: JSONObject([("s", .bool(true))]), key: nil), wait: true)
        let walSegmentsBefore = try PosixDisk().listDirectory(joinPath(dir.path, "wal")).filter { $0.hasSuffix(".wal") }.count
        #expect(walSegmentsBefore > 2)
        try await shard.persist()
        let walSegmentsAfter = try PosixDisk().listDirectory(joinPath(dir.path, "wal")).filter { $0.hasSuffix(".wal") }.count
        #expect(walSegmentsAfter < walSegmentsBefore)
        // More writes after the flush live only in the WAL.
        _ = try await shard.update(.upsert([point(5, [5, 5])]), wait: true)
        _ = try await shard.update(.deletePayload([.number(8)], keys: ["i"]), wait: true)

        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await reopened.pointCount == 2999)
        let records = await reopened.retrieve([.number(4), .number(5), .number(6), .number(7), .number(8), .number(2999)], withPayload: .all, withVector: .all)
        #expect(records == [
            PointRecord(id: .number(4), payload: JSONObject([("i", .int(4)), ("pad", .string(padding))]), vectors: ["a": [4, 0], "b": [1, 1, 4]]),
            PointRecord(id: .number(5), payload: JSONObject(), vectors: ["a": [5, 5]]),
            PointRecord(id: .number(7), payload: JSONObject([("s", .bool(true))]), vectors: ["a": [7, 0], "b": [1, 1, 7]]),
            PointRecord(id: .number(8), payload: JSONObject([("pad", .string(padding))]), vectors: ["a": [8, 0], "b": [1, 1, 8]]),
            PointRecord(id: .number(2999), payload: JSONObject(), vectors: ["a": [2999, 0], "b": [1, 1, 2999]]),
        ])
        // Sequence numbers continue after the flushed version.
        #expect(try await reopened.update(.delete([.number(0)]), wait: true) > 3003)
        try await reopened.persist()
        let again = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await again.pointCount == 2998)
    }

    /// A flush that dies at any step leaves files the next start recovers from, with the WAL.
    @Test(arguments: [FaultyDisk.Operation.fileWrite, .fileSync, .writeFile, .rename])
    func failedFlushLosesNothing(failing: FaultyDisk.Operation) async throws {
        let fragments = ["vectors-", "payload.log", "ids.bin", "manifest.json", "segments.json"]
        var fired: [String] = []
        for fragment in fragments {
            let dir = TempDir()
            let disk = FaultyDisk()
            let shard = try LocalShard(path: dir.path, disk: disk, config: twoVectors)
            for i in 0..<20 { _ = try await shard.update(.upsert([point(UInt64(i), [Float(i), 1], payload: JSONObject([("i", .int(Int64(i)))]))]), wait: true) }
            try await shard.persist()
            for i in 0..<20 { _ = try await shard.update(.upsert([point(UInt64(i), [Float(i), 2], payload: JSONObject([("j", .int(Int64(i)))]))]), wait: true) }
            _ = try await shard.update(.delete([.number(3)]), wait: true)
            disk.fail(failing, whenPathContains: fragment)
            try? await shard.persist()
            if disk.injected > 0 { fired.append(fragment) }
            disk.heal()
            let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
            #expect(await reopened.pointCount == 19, "failing \(failing) on \(fragment)")
            let r = await reopened.retrieve([.number(2), .number(3)], withPayload: .all, withVector: .all)
            #expect(r == [PointRecord(id: .number(2), payload: JSONObject([("j", .int(2))]), vectors: ["a": [2, 2]])], "failing \(failing) on \(fragment)")
        }
        // A fault that never fires tests nothing: each kind of operation fails on some file.
        #expect(!fired.isEmpty, "no \(failing) fault fired during the flush")
    }

    @Test func waitFalseWritesAreFlushedWhenDue() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        _ = try await shard.update(.upsert([point(1, [1, 2])]), wait: false)
        let start = ContinuousClock.now
        try await shard.flushIfDue(interval: .seconds(5), now: start)
        #expect(await shard.unsyncedSince != nil)
        #expect(!PosixDisk().fileExists(joinPath(dir.path, "segments.json")))
        try await shard.flushIfDue(interval: .seconds(5), now: start + .seconds(10))
        #expect(await shard.unsyncedSince == nil)
        #expect(PosixDisk().fileExists(joinPath(dir.path, "segments.json")))
    }

    @Test func operationsOnMissingPointsWriteNothing() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        _ = try await shard.update(.upsert([point(1, [1, 2])]), wait: true)
        await #expect(throws: ShardError.pointNotFound(.number(2))) {
            _ = try await shard.update(.setPayload([.number(1), .number(2)], payload: JSONObject([("k", .int(1))]), key: nil), wait: true)
        }
        #expect(await shard.retrieve([.number(1)], withPayload: .all, withVector: .none).first?.payload == JSONObject())
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await reopened.retrieve([.number(1)], withPayload: .all, withVector: .none).first?.payload == JSONObject())
    }

    @Test func failedFsyncStopsAcknowledgingWrites() async throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let shard = try LocalShard(path: dir.path, disk: disk, config: twoVectors)
        _ = try await shard.update(.upsert([point(1, [1, 2])]), wait: true)
        disk.fail(.fileSync, whenPathContains: "/wal/")
        await #expect(throws: ShardError.self) { _ = try await shard.update(.upsert([point(2, [1, 2])]), wait: true) }
        disk.heal()
        await #expect(throws: ShardError.self) { _ = try await shard.update(.upsert([point(3, [1, 2])]), wait: true) }
        // The failed write was not applied, so no reader saw it as acknowledged.
        #expect(await shard.retrieve([.number(2), .number(3)], withPayload: .none, withVector: .none).isEmpty)
    }
}

@Suite struct PointIDTests {
    @Test func parsesUUIDForms() {
        let expected = PointID(uuidString: "550e8400-e29b-41d4-a716-446655440000")
        #expect(expected != nil)
        #expect(PointID(uuidString: "550E8400E29B41D4A716446655440000") == expected)
        #expect(PointID(uuidString: "{550e8400-e29b-41d4-a716-446655440000}") == expected)
        #expect(PointID(uuidString: "urn:uuid:550e8400-e29b-41d4-a716-446655440000") == expected)
        #expect(expected?.description == "550e8400-e29b-41d4-a716-446655440000")
        for bad in ["", "550e8400-e29b-41d4-a716-44665544000", "550e8400e29b-41d4-a716-4466554400000", "zz0e8400-e29b-41d4-a716-446655440000"] {
            #expect(PointID(uuidString: bad) == nil)
        }
    }

    @Test func jsonIDs() throws {
        #expect(try PointID(json: .int(5)) == .number(5))
        #expect(try PointID(json: .uint(UInt64.max)) == .number(UInt64.max))
        #expect(throws: ValidationMessage.self) { try PointID(json: .int(-1)) }
        #expect(throws: ValidationMessage.self) { try PointID(json: .double(1.5)) }
        #expect(throws: ValidationMessage.self) { try PointID(json: .string("not-a-uuid")) }
    }
}

@Suite struct ShardClockTests {
    @Test func replayTakesTheClocksOfRecordsTheSegmentsAlreadyHold() async throws {
        let dir = TempDir()
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
            _ = try await shard.update(.upsert([point(1, [1, 1])]), clock: ClockTag(peerID: 2, clockID: 0, tick: 5, token: 1), wait: true)
            try await shard.persist()
        }
        // As if start-up had lost newest_clocks.json: the WAL's records still carry their tags.
        try PosixDisk().removeItem(dir.path + "/newest_clocks.json")
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        #expect(await shard.newestClocks.tick(of: 2, clock: 0) == 5)
    }

    @Test func clockedRecordsRoundTripAndOldRecordsStillRead() throws {
        let operation = UpdateOperation.delete([.number(4)])
        let tag = ClockTag(peerID: 7, clockID: 3, tick: 9, token: 11, force: true)
        let (decoded, clock) = try OperationCodec.decodeRecord(OperationCodec.encode(operation, clock: tag))
        #expect(decoded == operation && clock == tag)
        let (plain, none) = try OperationCodec.decodeRecord(OperationCodec.encode(operation, clock: nil))
        #expect(plain == operation && none == nil)
        let bytes = OperationCodec.encode(operation, clock: tag)
        for cut in 1..<bytes.count {
            #expect(throws: OperationCodec.DecodeError.self) { try OperationCodec.decodeRecord(Array(bytes[0..<cut])) }
        }
        // A later record form is refused by name, not misread.
        do {
            _ = try OperationCodec.decodeRecord([0x81] + bytes.dropFirst())
            Issue.record("a record of an unknown form was read")
        } catch {
            #expect(error.reason.contains("record form 0x81"))
        }
    }

    @Test func aReplicaRejectsStaleTicksAndRemembersThemAcrossRestarts() async throws {
        let dir = TempDir()
        func tag(_ tick: UInt64, token: UInt64 = 1, force: Bool = false) -> ClockTag {
            ClockTag(peerID: 2, clockID: 0, tick: tick, token: token, force: force)
        }
        func expectRejected(_ shard: LocalShard, _ clock: ClockTag, echo: UInt64) async {
            await #expect(throws: ShardError.clockRejected(tick: echo)) { _ = try await shard.update(.upsert([point(9, [9, 9])]), clock: clock, wait: true) }
        }
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
            // A fresh clock's tick 0 is rejected; the echo tells the sender where to go on from.
            await expectRejected(shard, tag(0), echo: 0)
            _ = try await shard.update(.upsert([point(1, [1, 1])]), clock: tag(5), wait: true)
            // The same send again is taken; an older tick, or the same tick from another send, is not.
            _ = try await shard.update(.upsert([point(1, [1, 1])]), clock: tag(5), wait: true)
            await expectRejected(shard, tag(4), echo: 5)
            await expectRejected(shard, tag(5, token: 2), echo: 5)
            // A forced tag (a transfer's) is taken whatever its tick.
            _ = try await shard.update(.upsert([point(2, [2, 2])]), clock: tag(1, force: true), wait: true)
            #expect(await shard.pointCount == 2)
            #expect(await shard.firstMissing([.number(9)]) == .number(9))
        }
        // Reopened from the WAL alone.
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
            await expectRejected(shard, tag(5, token: 2), echo: 5)
            _ = try await shard.update(.upsert([point(3, [3, 3])]), clock: tag(8), wait: true)
            // Segments persisted and the WAL truncated: the clocks live on in newest_clocks.json.
            try await shard.persist()
        }
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        await expectRejected(shard, tag(7), echo: 8)
        // A clock moves only once its operation is in the WAL: an update naming a missing point
        // writes nothing and leaves the clock where it was.
        await #expect(throws: ShardError.pointNotFound(.number(77))) {
            _ = try await shard.update(.clearPayload([.number(77)]), clock: tag(20), wait: true)
        }
        #expect(await shard.newestClocks.tick(of: 2, clock: 0) == 8)
        #expect(await shard.newestClocks.tick(of: 2, clock: 0) == 8)
        #expect(await shard.pointCount == 3)
    }
}
