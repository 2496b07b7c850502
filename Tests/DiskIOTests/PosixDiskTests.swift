import DiskIO
import Foundation
import Testing

@Suite struct PosixDiskTests {
    let disk = PosixDisk()

    func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "quiver-disk-\(UUID().uuidString)"
        try disk.createDirectories(path)
        return path
    }

    @Test func atomicWriteReplacesContentAndLeavesNoTempFile() throws {
        let dir = try tempDir()
        defer { try? disk.removeItem(dir) }
        let file = joinPath(dir, "config.json")
        try disk.writeFileAtomically(file, Array("one".utf8))
        try disk.writeFileAtomically(file, Array("two".utf8))
        #expect(try disk.readFile(file) == Array("two".utf8))
        #expect(try disk.listDirectory(dir) == ["config.json"])
    }

    @Test func filesUnderFollowLinksToOtherDirectoriesButNotLoops() throws {
        let dir = try tempDir(), elsewhere = try tempDir()
        defer {
            try? disk.removeItem(dir)
            try? disk.removeItem(elsewhere)
        }
        try disk.createDirectories(joinPath(dir, "a", "b"))
        try disk.writeFile(joinPath(dir, "a", "b", "f"), [1, 2, 3])
        try disk.writeFile(joinPath(elsewhere, "g"), [1])
        #expect(symlink(elsewhere, joinPath(dir, "a", "moved")) == 0)
        #expect(symlink("..", joinPath(dir, "a", "b", "up")) == 0)
        #expect(symlink(dir, joinPath(dir, "a", "b", "root")) == 0)
        #expect(disk.files(under: dir) == [joinPath(dir, "a", "b", "f"), joinPath(dir, "a", "moved", "g")])
        #expect(disk.directoryBytes(dir) == 4)
        // Removing the tree removes the links, not what they point to.
        try disk.removeItem(dir)
        #expect(disk.fileExists(joinPath(elsewhere, "g")))
    }

    @Test func createsNestedDirectoriesAndRemovesTrees() throws {
        let dir = try tempDir()
        let nested = joinPath(dir, "a", "b", "c")
        try disk.createDirectories(nested)
        try disk.writeFile(joinPath(nested, "f"), [1, 2, 3])
        #expect(disk.isDirectory(nested))
        #expect(try disk.listDirectory(joinPath(dir, "a")) == ["b"])
        try disk.removeItem(dir)
        #expect(!disk.fileExists(dir))
        try disk.removeItem(dir)  // already gone: no error
    }

    @Test func directoriesBelowARootThatWasMovedAwayAreNotCreated() throws {
        let dir = try tempDir()
        defer { try? disk.removeItem(dir) }
        let shard = joinPath(dir, "collection/0")
        try disk.createDirectories(shard)
        try disk.createDirectories(joinPath(shard, "segments/a"), below: shard)
        #expect(disk.isDirectory(joinPath(shard, "segments/a")))
        // The collection is moved away (deleted) while a segment is still being written for it.
        try disk.rename(joinPath(dir, "collection"), joinPath(dir, "graveyard"))
        #expect(throws: DiskError.self) { try disk.createDirectories(joinPath(shard, "segments/b"), below: shard) }
        #expect(!disk.fileExists(joinPath(dir, "collection")))
    }

    @Test func renameMovesDirectories() throws {
        let dir = try tempDir()
        defer { try? disk.removeItem(dir) }
        try disk.createDirectory(joinPath(dir, "from"))
        try disk.writeFile(joinPath(dir, "from", "x"), [7])
        try disk.rename(joinPath(dir, "from"), joinPath(dir, "to"))
        try disk.syncDirectory(dir)
        #expect(try disk.readFile(joinPath(dir, "to", "x")) == [7])
        #expect(!disk.fileExists(joinPath(dir, "from")))
    }

    @Test func readsLargeFiles() throws {
        let dir = try tempDir()
        defer { try? disk.removeItem(dir) }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try disk.writeFile(joinPath(dir, "big"), bytes)
        #expect(try disk.readFile(joinPath(dir, "big")) == bytes)
    }

    @Test func mapsAndReadsRegions() throws {
        let dir = try tempDir()
        defer { try? disk.removeItem(dir) }
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let file = joinPath(dir, "data.bin")
        try disk.writeFile(file, bytes)
        try disk.writeFile(joinPath(dir, "empty.bin"), [])
        for region in [try disk.map(file), try disk.readRegion(file)] {
            #expect(Array(region.bytes) == bytes)
        }
        #expect(try disk.map(joinPath(dir, "empty.bin")).count == 0)
        #expect(try disk.readRegion(joinPath(dir, "empty.bin")).count == 0)
        #expect(throws: DiskError.self) { try disk.map(joinPath(dir, "missing")) }
    }

    @Test func errorsSayWhatAndWhere() {
        do {
            _ = try disk.readFile("/nonexistent/quiver/file")
            Issue.record("expected an error")
        } catch {
            #expect(error.operation == "open")
            #expect(error.path == "/nonexistent/quiver/file")
            #expect(error.description.contains("No such file"))
        }
    }

    @Test func pathHelpers() {
        #expect(parentDirectory(of: "/a/b/c") == "/a/b")
        #expect(parentDirectory(of: "/a") == "/")
        #expect(parentDirectory(of: "a") == ".")
        #expect(joinPath("a", "", "b") == "a/b")
    }
}

@Suite struct ScratchMemoryTests {
    let disk = PosixDisk()

    @Test func isAnUnnamedFileThatGrowsKeepsItsBytesAndReadsZeroBeyondThem() throws {
        let dir = NSTemporaryDirectory() + "quiver-scratch-\(UUID().uuidString)"
        try disk.createDirectories(dir)
        defer { try? disk.removeItem(dir) }
        let memory = disk.scratchMemory(in: dir)
        #expect(memory.base == nil && memory.capacity == 0)
        memory.reserve(10)
        #expect(memory.isFileBacked)
        #expect(memory.capacity == 1 << 20)
        let bytes = memory.base!.assumingMemoryBound(to: UInt8.self)
        for i in 0..<1000 { bytes[i] = UInt8(i % 251) }
        memory.reserve(5 << 20)
        #expect(memory.capacity >= 5 << 20)
        let grown = memory.base!.assumingMemoryBound(to: UInt8.self)
        #expect((0..<1000).allSatisfy { grown[$0] == UInt8($0 % 251) })
        #expect((1000..<(5 << 20)).allSatisfy { grown[$0] == 0 })
        // A copy is memory of its own: changing one leaves the other as it was.
        let copy = memory.copy(1000)
        #expect(copy.isFileBacked)
        copy.base!.assumingMemoryBound(to: UInt8.self)[0] = 99
        #expect(grown[0] == 0 && copy.base!.assumingMemoryBound(to: UInt8.self)[1] == 1)
        #expect(copy.base!.assumingMemoryBound(to: UInt8.self)[1000] == 0)
        // The files have no names: nothing is left in the directory, now or later.
        #expect(try disk.listDirectory(dir).isEmpty)
    }

    @Test func isProcessMemoryWhereNoFileCanBeMade() {
        let memory = disk.scratchMemory(in: "/nonexistent-\(UUID().uuidString)")
        memory.reserve(3 << 20)
        #expect(!memory.isFileBacked)
        let bytes = memory.base!.assumingMemoryBound(to: UInt8.self)
        #expect((0..<(3 << 20)).allSatisfy { bytes[$0] == 0 })
        bytes[7] = 7
        memory.reserve(9 << 20)
        #expect(memory.base!.assumingMemoryBound(to: UInt8.self)[7] == 7)
        #expect(!memory.copy(8).isFileBacked)
    }
}
