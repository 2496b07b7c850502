import DiskIO
import QuiverModel
import QuiverTesting
@testable import Storage
import Testing

@Suite struct SnapshotRecoveryTests {
    /// A recovery that would not fit on the disk is refused before anything is written.
    @Test func aFullDiskRefusesARecoveryAndChangesNothing() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk)
        try await toc.createCollection("c", request(#"{"vectors":{"size":2,"distance":"Dot"}}"#))
        let collection = try await toc.collection("c")
        _ = try await collection.update(PointsUpdate(.upsert((0..<50).map { PointStruct(id: .number(UInt64($0)), vectors: ["": [1, Float($0)]]) })),
                                        wait: true)
        let snapshot = try await toc.createSnapshot("c", now: 0)
        #expect(snapshot.name.hasSuffix("-1970-01-01-00-00-00.snapshot"))
        _ = try await collection.update(PointsUpdate(.delete((0..<10).map { .number(UInt64($0)) })), wait: true)
        disk.setAvailableBytes(1024)
        await #expect {
            _ = try await toc.recoverCollection("c", from: try await toc.snapshotPath("c", snapshot.name), checksum: nil)
        } throws: { error in
            "\(error)".contains("Not enough free disk space")
        }
        #expect(try await toc.collection("c").count() == 40)
        #expect(try PosixDisk().listDirectory(joinPath(storage.path, "tmp")).isEmpty)
        disk.setAvailableBytes(nil)
        _ = try await toc.recoverCollection("c", from: try await toc.snapshotPath("c", snapshot.name), checksum: nil)
        await toc.finishRecovery("c")
        #expect(try await toc.collection("c").count() == 50)
    }
}
