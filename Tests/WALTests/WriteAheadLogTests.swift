import DiskIO
import Foundation
import QuiverTesting
import Testing
import WAL

final class TempDir {
    let path = NSTemporaryDirectory() + "quiver-wal-\(UUID().uuidString)"
    deinit { try? PosixDisk().removeItem(path) }
}

func payload(_ i: Int, size: Int? = nil) -> [UInt8] {
    let n = size ?? (5 + (i * 7) % 40)
    return (0..<n).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
}

func open(_ dir: String, disk: any Disk = PosixDisk(), capacity: Int = 4096, ahead: Int = 0, retain: Int = 1) throws -> WriteAheadLog {
    try WriteAheadLog(directory: dir, disk: disk,
                      options: .init(segmentCapacityBytes: capacity, segmentsAhead: ahead, retainClosed: retain))
}

func segmentFiles(_ dir: String) throws -> [String] {
    try PosixDisk().listDirectory(dir).filter { $0.hasSuffix(".wal") }
}

@Suite struct WriteAheadLogTests {
    @Test func appendSyncReopenRead() throws {
        let dir = TempDir()
        let wal = try open(dir.path)
        #expect(wal.isEmpty)
        for i in 1...50 { #expect(try wal.append(payload(i)) == UInt64(i)) }
        try wal.sync()
        let reopened = try open(dir.path)
        #expect(reopened.firstSequence == 1)
        #expect(reopened.lastSequence == 50)
        let records = try reopened.read(from: 1)
        #expect(records.map(\.sequence) == Array(1...50))
        #expect(records.map(\.payload) == (1...50).map { payload($0) })
        #expect(try reopened.read(from: 31, limit: 5).map(\.sequence) == [31, 32, 33, 34, 35])
        #expect(try reopened.read(from: 51).isEmpty)
        #expect(try reopened.append([9]) == 51)
    }

    @Test func rollsSegmentsAtCapacityAndReadsAcrossThem() throws {
        let dir = TempDir()
        let wal = try open(dir.path, capacity: 512)
        for i in 1...200 { try wal.append(payload(i)) }
        try wal.sync()
        #expect(wal.segmentCount > 5)
        #expect(try segmentFiles(dir.path).count == wal.segmentCount)
        let reopened = try open(dir.path, capacity: 512)
        #expect(reopened.lastSequence == 200)
        #expect(try reopened.read(from: 77).map(\.sequence) == Array(77...200))
        #expect(try reopened.read(from: 77).map(\.payload) == (77...200).map { payload($0) })
    }

    @Test func recordLargerThanASegmentGetsItsOwn() throws {
        let dir = TempDir()
        let wal = try open(dir.path, capacity: 256)
        try wal.append(payload(1))
        try wal.append(payload(2, size: 5000))
        try wal.append(payload(3))
        try wal.sync()
        #expect(try open(dir.path, capacity: 256).read(from: 1).map(\.payload) == [payload(1), payload(2, size: 5000), payload(3)])
    }

    /// Records larger than the reader's 1 MiB window, of lengths that need padding: a record whose
    /// payload ends exactly where a read ended must still be followed from its padded end (a
    /// reader that stopped there once took the next record for a torn tail and erased the rest).
    @Test func recordsLargerThanTheReadWindowAllComeBack() throws {
        let dir = TempDir()
        let sizes = [1_795_187, 1_774_451, 1_730_931, 1_890_675, 13, 1_048_573, 2_097_155, 7]
        let wal = try open(dir.path, capacity: 32 << 20)
        for (i, size) in sizes.enumerated() { try wal.append(payload(i, size: size)) }
        try wal.sync()
        for _ in 0..<2 {
            let reopened = try open(dir.path, capacity: 32 << 20)
            #expect(reopened.lastSequence == UInt64(sizes.count))
            #expect(try reopened.read(from: 1).map(\.payload) == sizes.enumerated().map { payload($0, size: $1) })
            #expect(try reopened.read(from: 4).map(\.sequence) == Array(4...UInt64(sizes.count)))
        }
    }

    /// A torn write leaves a prefix of the last record followed by zeros (preallocated space), or a
    /// shorter file. Either way the record is dropped, the rest stays, and appending continues.
    @Test func truncationAtEveryByteOfTheLastRecord() throws {
        let source = TempDir()
        let wal = try open(source.path)
        for i in 1...5 { try wal.append(payload(i)) }
        try wal.sync()
        let segment = joinPath(source.path, try segmentFiles(source.path)[0])
        let original = try PosixDisk().readFile(segment)
        let sizes = (1...5).map { (16 + payload($0).count + 7) & ~7 }
        let lastStart = 24 + sizes.dropLast().reduce(0, +)
        let lastEnd = lastStart + 16 + payload(5).count

        for cut in lastStart..<lastEnd {
            for shorten in [false, true] {
                let copy = TempDir()
                try PosixDisk().createDirectories(copy.path)
                var bytes = original
                if shorten {
                    bytes.removeSubrange(cut...)
                } else {
                    for i in cut..<bytes.count { bytes[i] = 0 }
                }
                try PosixDisk().writeFile(joinPath(copy.path, segmentFiles(source.path)[0]), bytes)
                let recovered = try open(copy.path)
                #expect(recovered.lastSequence == 4, "cut at \(cut), shortened: \(shorten)")
                #expect(try recovered.read(from: 1).map(\.payload) == (1...4).map { payload($0) })
                #expect(try recovered.append([42]) == 5)
                try recovered.sync()
                #expect(try open(copy.path).read(from: 5).map(\.payload) == [[42]])
            }
        }
    }

    /// Writes three 20-byte records (40 bytes each on disk, after the 24-byte header), flips the
    /// bits `mask` of byte `offset` of the segment, and returns the segment's path and new bytes.
    func threeRecordsWithFlippedBits(_ dir: TempDir, at offset: Int, mask: UInt8) throws -> (String, [UInt8]) {
        let wal = try open(dir.path)
        for i in 1...3 { try wal.append(payload(i, size: 20)) }
        try wal.sync()
        let segment = joinPath(dir.path, try segmentFiles(dir.path)[0])
        var bytes = try PosixDisk().readFile(segment)
        bytes[offset] ^= mask
        try PosixDisk().writeFile(segment, bytes)
        return (segment, bytes)
    }

    @Test func flippedBitInTheLastRecordIsATornTail() throws {
        let dir = TempDir()
        _ = try threeRecordsWithFlippedBits(dir, at: 24 + 2 * 40 + 20, mask: 0x10)  // inside record 3's payload
        #expect(try open(dir.path).lastSequence == 2)
    }

    @Test func flippedBitBeforeTheTailIsCorruption() throws {
        let dir = TempDir()
        // Inside record 2's payload; record 3 is intact.
        let (segment, bytes) = try threeRecordsWithFlippedBits(dir, at: 24 + 40 + 20, mask: 0x01)
        do {
            _ = try open(dir.path)
            Issue.record("expected corruption")
        } catch let error as WALError {
            guard case .corrupted(_, let offset, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(offset == 24 + 40)
            #expect(reason == "checksum mismatch")
            #expect(error.description.contains("restore the shard"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        // Opening again gives the same clear error: no repair was attempted, nothing was lost.
        #expect(throws: WALError.self) { try open(dir.path) }
        #expect(try PosixDisk().readFile(segment) == bytes)
    }

    @Test func damageInAnEarlierSegmentIsCorruption() throws {
        let dir = TempDir()
        let wal = try open(dir.path, capacity: 256)
        for i in 1...30 { try wal.append(payload(i)) }
        try wal.sync()
        let first = joinPath(dir.path, try segmentFiles(dir.path)[0])
        var bytes = try PosixDisk().readFile(first)
        bytes[30] ^= 0xFF
        try PosixDisk().writeFile(first, bytes)
        #expect(throws: WALError.self) { try open(dir.path, capacity: 256) }
    }

    @Test func damagedSegmentHeaderIsCorruption() throws {
        let dir = TempDir()
        let wal = try open(dir.path)
        try wal.append(payload(1))
        try wal.sync()
        let segment = joinPath(dir.path, try segmentFiles(dir.path)[0])
        var bytes = try PosixDisk().readFile(segment)
        bytes[3] ^= 0x01
        try PosixDisk().writeFile(segment, bytes)
        #expect(throws: WALError.self) { try open(dir.path) }
    }

    @Test func strayTempFileIsRemoved() throws {
        let dir = TempDir()
        let wal = try open(dir.path)
        for i in 1...3 { try wal.append(payload(i)) }
        try wal.sync()
        // A crash while creating the next segment leaves its temp file behind.
        try PosixDisk().writeFile(joinPath(dir.path, "00000000000000000004.wal.tmp"), [1, 2, 3, 4, 5])
        let reopened = try open(dir.path)
        #expect(reopened.lastSequence == 3)
        #expect(try !PosixDisk().listDirectory(dir.path).contains { $0.hasSuffix(".tmp") })
        #expect(try reopened.append([7]) == 4)
    }

    @Test func failedFsyncPoisonsTheLog() throws {
        let dir = TempDir()
        let disk = FaultyDisk()
        let wal = try open(dir.path, disk: disk)
        try wal.append(payload(1))
        try wal.sync()
        try wal.append(payload(2))
        disk.fail(.fileSync, whenPathContains: ".wal")
        #expect(throws: WALError.self) { try wal.sync() }
        disk.heal()
        // The failure is not forgotten once the disk looks healthy again.
        do {
            try wal.append(payload(3))
            Issue.record("append after a failed fsync must fail")
        } catch {
            guard case .poisoned = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
        #expect(throws: WALError.self) { try wal.sync() }
        // Reopening recovers what reached the file. The injected fault fails only the fsync call;
        // the written record stays in the page cache, so both records read back.
        let reopened = try open(dir.path)
        #expect(reopened.lastSequence == 2)
        #expect(try reopened.read(from: 2).first?.payload == payload(2))
        #expect(try reopened.read(from: 1).first?.payload == payload(1))
    }

    @Test func truncationDropsPersistedSegmentsButRetainsSome() throws {
        let dir = TempDir()
        let wal = try open(dir.path, capacity: 256, retain: 1)
        for i in 1...60 { try wal.append(payload(i)) }
        try wal.sync()
        let before = wal.segmentCount
        try wal.truncate(before: 50)
        #expect(wal.segmentCount < before)
        #expect(wal.firstSequence > 1)
        // One closed segment wholly below 50 is retained, so reads can start before 50.
        #expect(wal.firstSequence < 50)
        #expect(try wal.read(from: wal.firstSequence).last?.sequence == 60)
        #expect(throws: WALError.self) { try wal.read(from: 1) }
        let reopened = try open(dir.path, capacity: 256)
        #expect(reopened.firstSequence == wal.firstSequence)
        #expect(reopened.lastSequence == 60)
        try reopened.truncate(before: 1_000)  // never drops the current segment
        #expect(reopened.segmentCount >= 1)
        #expect(try reopened.append([1]) == 61)
    }

    @Test func spareSegmentsArePreallocatedAndUsed() throws {
        let dir = TempDir()
        let wal = try open(dir.path, capacity: 256, ahead: 2)
        let spares = { try PosixDisk().listDirectory(dir.path).filter { $0.hasSuffix(".spare") }.count }
        #expect(try spares() == 2)
        for i in 1...40 { try wal.append(payload(i)) }
        try wal.sync()
        #expect(wal.segmentCount > 2)
        #expect(try spares() == 2)
        let reopened = try open(dir.path, capacity: 256, ahead: 2)
        #expect(try reopened.read(from: 1).map(\.payload) == (1...40).map { payload($0) })
    }

    @Test func startSequenceForAnEmptyLog() throws {
        let dir = TempDir()
        let wal = try WriteAheadLog(directory: dir.path, disk: PosixDisk(), startSequence: 1000)
        #expect(wal.isEmpty)
        #expect(try wal.append([1]) == 1000)
    }
}
