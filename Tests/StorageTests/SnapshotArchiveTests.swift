import DiskIO
import Foundation
@testable import Storage
import Testing

@Suite struct SnapshotArchiveTests {
    @Test func archivesRoundTripAndTarReadsThem() throws {
        let disk = PosixDisk()
        let root = NSTemporaryDirectory() + "quiver-archive-\(UUID().uuidString)"
        defer { try? disk.removeItem(root) }
        let source = joinPath(root, "source")
        let long = String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 60)  // over 100 bytes: prefix + name
        try disk.createDirectories(joinPath(source, long))
        try disk.writeFile(joinPath(source, "a.json"), Array("{}".utf8))
        try disk.writeFile(joinPath(source, long, "big.bin"), (0..<100_000).map { UInt8($0 % 251) })
        try disk.writeFile(joinPath(source, "empty"), [])
        let archive = joinPath(root, "x.snapshot")
        let written = try SnapshotArchive.write(source, to: archive, disk: disk)
        #expect(written.size % 512 == 0)
        #expect(try SnapshotArchive.sha256(of: archive, disk: disk) == written.sha256)

        try SnapshotArchive.extract(archive, into: joinPath(root, "out"), disk: disk)
        #expect(try disk.readFile(joinPath(root, "out", long, "big.bin")) == (0..<100_000).map { UInt8($0 % 251) })
        #expect(try disk.readFile(joinPath(root, "out", "empty")) == [])

        // GNU tar reads it too.
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-tf", archive]
        let pipe = Pipe()
        tar.standardOutput = pipe
        try tar.run()
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        #expect(listing.contains("\(long)/big.bin"))
    }

    @Test func entryPathsMustStayInside() throws {
        for bad in ["/etc/passwd", "../x", "a/../../b", "a/./b", "", "a//b"] {
            #expect(throws: StorageError.self) { try SnapshotArchive.safePath(bad) }
        }
        #expect(try SnapshotArchive.safePath("0/segments/") == "0/segments")
        #expect(try SnapshotArchive.safePath("config.json") == "config.json")
    }
}
