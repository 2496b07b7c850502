import DiskIO
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

/// What a `wal_delta` transfer sends: the WAL records a replica at a recovery point lacks.
@Suite struct WALDeltaTests {
    static func tag(_ peer: UInt64, _ clock: UInt32, _ tick: UInt64) -> ClockTag {
        ClockTag(peerID: peer, clockID: clock, tick: tick, token: tick)
    }

    static func clocks(_ tags: [ClockTag]) -> ClockMap {
        var map = ClockMap()
        for var tag in tags { _ = map.advance(&tag) }
        return map
    }

    /// WAL records 1… tagged as given, newest first, with the clocks they leave.
    static func wal(_ tags: [ClockTag?]) -> (records: [(UInt64, ClockTag?)], newest: ClockMap) {
        (Array(tags.enumerated().map { (UInt64($0.offset + 1), $0.element) }.reversed()), clocks(tags.compactMap { $0 }))
    }

    @Test func theDeltaStartsAtTheFirstRecordTheReplicaLacks() throws {
        // Records: 1 a1, 2 b1, 3 a2, 4 b2, 5 a3.
        let (records, newest) = Self.wal([Self.tag(1, 0, 1), Self.tag(2, 0, 1), Self.tag(1, 0, 2), Self.tag(2, 0, 2), Self.tag(1, 0, 3)])
        // Seen a1 and b1: from a2 (record 3) on.
        #expect(try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 1), Self.tag(2, 0, 1)]), newest: newest) == 3)
        // Seen a2 and b1: b2 (record 4) is the first it lacks; a3 comes after.
        #expect(try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 2), Self.tag(2, 0, 1)]), newest: newest) == 4)
        // Seen b2 but only a1: from a2, record 3 (b2 is replayed again; the replay is in order).
        #expect(try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 1), Self.tag(2, 0, 2)]), newest: newest) == 3)
        // Up to date: nothing to send.
        #expect(try LocalShard.resolveDelta(records, point: newest, newest: newest) == nil)
        // A clock it has never seen is needed from its first record.
        #expect(try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 3)]), newest: newest) == 2)
    }

    @Test func aDeltaIsRefusedWhenItCannotBeTrusted() throws {
        let (records, newest) = Self.wal([Self.tag(1, 0, 1), Self.tag(1, 0, 2), nil, Self.tag(1, 0, 3)])
        #expect(throws: WALDeltaError.empty) { try LocalShard.resolveDelta(records, point: ClockMap(), newest: newest) }
        #expect(throws: WALDeltaError.unknownClocks) {
            try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(9, 0, 1)]), newest: newest)
        }
        #expect(throws: WALDeltaError.higherThanCurrent) {
            try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 7)]), newest: newest)
        }
        // Record 3 has no tag (a transfer's batch): a delta reaching back past it is refused.
        #expect(throws: WALDeltaError.untaggedRecords) {
            try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 1)]), newest: newest)
        }
        #expect(try LocalShard.resolveDelta(records, point: Self.clocks([Self.tag(1, 0, 2)]), newest: newest) == 4)
        // The WAL starts at a5 (a1…a4 truncated): a replica at a2 cannot be caught up from it.
        let truncated: [(UInt64, ClockTag?)] = [(6, Self.tag(1, 0, 6)), (5, Self.tag(1, 0, 5))]
        #expect(throws: WALDeltaError.notFound) {
            try LocalShard.resolveDelta(truncated, point: Self.clocks([Self.tag(1, 0, 2)]), newest: Self.clocks([Self.tag(1, 0, 6)]))
        }
        #expect(try LocalShard.resolveDelta(truncated, point: Self.clocks([Self.tag(1, 0, 4)]), newest: Self.clocks([Self.tag(1, 0, 6)])) == 5)
    }

    @Test func theRecoveryPointStaysWhereTheReplicaLeftActiveAcrossARestart() async throws {
        let dir = TempDir()
        let config = twoVectors
        do {
            let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
            _ = try await shard.update(.upsert([point(1, [1, 1])]), clock: Self.tag(2, 0, 1), wait: true)
            try await shard.freezeRecoveryPoint()
            // Updates taken while not active (a transfer's, forced) do not move it.
            var forced = Self.tag(2, 0, 5)
            forced.force = true
            _ = try await shard.update(.upsert([point(2, [1, 1])]), clock: forced, wait: true)
            #expect(await shard.recoveryPoint == Self.clocks([Self.tag(2, 0, 1)]))
            #expect(await shard.newestClocks.tick(of: 2, clock: 0) == 5)
            // The records it has are read back as written, clock tags included.
            let records = try await shard.walRecords(from: 1, limit: 10)
            #expect(records.map(\.sequence) == [1, 2] && records.map(\.clock?.tick) == [1, 5])
            #expect(try await shard.resolveDelta(for: Self.clocks([Self.tag(2, 0, 1)]), holding: 1) == 2)
        }
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: config)
        #expect(await reopened.recoveryPoint == Self.clocks([Self.tag(2, 0, 1)]))
        try await reopened.thawRecoveryPoint()
        #expect(await reopened.recoveryPoint.tick(of: 2, clock: 0) == 5)
        try await reopened.clearRecoveryPoint()
        await #expect(throws: WALDeltaError.empty) { _ = try await reopened.resolveDelta(for: await reopened.recoveryPoint, holding: 1) }
    }

    @Test func aTransfersHoldKeepsTheWALFromTruncation() async throws {
        let dir = TempDir()
        var small = twoVectors
        small.walConfig = WalConfig(walCapacityMb: 1, walSegmentsAhead: 0, walRetainClosed: 0)
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: small)
        func fill(_ from: UInt64) async throws {
            // About 3 MB of records: three segments of 1 MB.
            for i in from..<(from + 300) {
                let payload = JSONObject([("pad", .string(String(repeating: "x", count: 10_000)))])
                _ = try await shard.update(.upsert([point(i, [1, 1], payload: payload)]), clock: Self.tag(2, 0, i + 1), wait: false)
            }
        }
        try await fill(0)
        await shard.holdWAL(from: 1, for: 7)
        await shard.holdWAL(from: 200, for: 8)
        try await fill(300)
        try await shard.persist()
        #expect(try await shard.walRecords(from: 1, limit: 1).first?.sequence == 1)
        await shard.holdWAL(from: nil, for: 7)
        try await fill(600)
        try await shard.persist()
        // The other hold still keeps its records; those before it are gone.
        #expect(try await shard.walRecords(from: 200, limit: 1).first?.sequence == 200)
        await #expect(throws: ShardError.self) { _ = try await shard.walRecords(from: 1, limit: 1) }
    }
}
