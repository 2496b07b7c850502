import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
@testable import Storage
import QuiverTesting
import Testing

func request(_ json: String) throws -> CreateCollection {
    try JSONValueDecoder().decode(CreateCollection.self, from: Array(json.utf8))
}

/// A storage directory that is removed when the test ends.
final class TempStorage {
    let path = NSTemporaryDirectory() + "quiver-toc-\(UUID().uuidString)"
    deinit { try? PosixDisk().removeItem(path) }

    /// The catalogue as a single node with peer id `peerID` opens it.
    func open(disk: any Disk = PosixDisk(), maxCollections: Int? = nil, peerID: UInt64 = 1, space: SpaceGuard? = nil,
              quota: NodeQuota? = nil) async throws -> TableOfContent {
        let toc = TableOfContent(storagePath: path, disk: disk, maxCollections: maxCollections, peerID: peerID, space: space,
                                 quota: quota, logger: Logger(label: "test"))
        try await toc.load()
        return toc
    }
}

@Suite struct TableOfContentTests {
    let vectors = #"{"vectors":{"size":4,"distance":"Cosine"}}"#

    @Test func collectionsAndAliasesSurviveReopening() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("books", request(#"{"vectors":{"size":4,"distance":"Cosine"},"metadata":{"v":1.0}}"#))
        try await toc.createCollection("films", request(vectors))
        try await toc.updateAliases([.create(collectionName: "books", aliasName: "library")])
        let before = try await toc.collectionInfo("books").config

        let reopened = try await storage.open()
        #expect(await reopened.collectionNames == ["books", "films"])
        #expect(try await reopened.collectionInfo("books").config == before)
        #expect(try await reopened.collectionInfo("library").config == before)
        #expect(await reopened.listAliases() == [AliasDescription(aliasName: "library", collectionName: "books")])
    }

    @Test func createRejectsDuplicatesAndAliasNames() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        await #expect(throws: StorageError.alreadyExists("Collection `c` already exists!")) {
            try await toc.createCollection("c", request(vectors))
        }
        try await toc.updateAliases([.create(collectionName: "c", aliasName: "a")])
        await #expect(throws: StorageError.self) { try await toc.createCollection("a", request(vectors)) }
    }

    @Test func maxCollectionsIsEnforced() async throws {
        let storage = TempStorage()
        let toc = try await storage.open(maxCollections: 1)
        try await toc.createCollection("one", request(vectors))
        await #expect(throws: StorageError.self) { try await toc.createCollection("two", request(vectors)) }
    }

    @Test func updatePersists() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        var update = UpdateCollection()
        var hnsw = HnswConfigDiff()
        hnsw.m = 48
        update.hnswConfig = hnsw
        try await toc.updateCollection("c", update)
        #expect(try await storage.open().collectionInfo("c").config.hnswConfig.m == 48)
    }

    @Test func deleteRemovesFilesAndAliases() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        try await toc.createCollection("d", request(vectors))
        try await toc.updateAliases([.create(collectionName: "c", aliasName: "a1"), .create(collectionName: "d", aliasName: "a2")])
        #expect(try await toc.dropCollection("a1") == false)  // an alias does not delete its target
        #expect(try await toc.dropCollection("c") == true)
        #expect(try await toc.dropCollection("c") == false)
        #expect(!PosixDisk().fileExists(joinPath(storage.path, "collections", "c")))
        let reopened = try await storage.open()
        #expect(await reopened.collectionNames == ["d"])
        #expect(await reopened.listAliases() == [AliasDescription(aliasName: "a2", collectionName: "d")])
    }

    @Test func aliasActionsApplyAllOrNothing() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        try await toc.updateAliases([.create(collectionName: "c", aliasName: "keep")])
        await #expect(throws: StorageError.notFound("Collection `missing` doesn't exist!")) {
            try await toc.updateAliases([
                .create(collectionName: "c", aliasName: "new"),
                .delete(aliasName: "keep"),
                .create(collectionName: "missing", aliasName: "x"),
            ])
        }
        #expect(await toc.listAliases() == [AliasDescription(aliasName: "keep", collectionName: "c")])
        #expect(try await storage.open().listAliases() == [AliasDescription(aliasName: "keep", collectionName: "c")])
    }

    @Test func aliasRenameAndBlueGreenSwitch() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("blue", request(vectors))
        try await toc.createCollection("green", request(vectors))
        // Deleting a missing alias is fine, so the switch works on first use too.
        try await toc.updateAliases([.delete(aliasName: "prod"), .create(collectionName: "blue", aliasName: "prod")])
        try await toc.updateAliases([.delete(aliasName: "prod"), .create(collectionName: "green", aliasName: "prod")])
        #expect(try await toc.collection("prod").name == "green")
        try await toc.updateAliases([.rename(oldAliasName: "prod", newAliasName: "live")])
        #expect(try await toc.aliases(of: "green") == [AliasDescription(aliasName: "live", collectionName: "green")])
        await #expect(throws: StorageError.notFound("Alias prod does not exists!")) {
            try await toc.updateAliases([.rename(oldAliasName: "prod", newAliasName: "x")])
        }
        await #expect(throws: StorageError.alreadyExists("Collection `blue` already exists!")) {
            try await toc.updateAliases([.create(collectionName: "green", aliasName: "blue")])
        }
    }

    @Test func failedCreateLeavesNothingBehind() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk)
        disk.fail(.syncDirectory, whenPathContains: "/tmp/create-")
        await #expect(throws: StorageError.self) { try await toc.createCollection("c", request(vectors)) }
        #expect(await toc.collectionNames.isEmpty)
        #expect(try PosixDisk().listDirectory(joinPath(storage.path, "collections")).isEmpty)
        disk.heal()
        try await toc.createCollection("c", request(vectors))
        #expect(await toc.collectionNames == ["c"])
    }

    @Test func failedConfigWriteKeepsOldConfig() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk)
        try await toc.createCollection("c", request(vectors))
        disk.fail(.writeFile, whenPathContains: "config.json")
        var update = UpdateCollection()
        update.metadata = JSONObject([("k", .int(1))])
        await #expect(throws: StorageError.self) { try await toc.updateCollection("c", update) }
        #expect(try await toc.collectionInfo("c").config.metadata == nil)
        #expect(try await storage.open().collectionInfo("c").config.metadata == nil)
    }

    @Test func startupClearsTempAndDropsDanglingAliases() async throws {
        let storage = TempStorage()
        let disk = PosixDisk()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        try await toc.updateAliases([.create(collectionName: "c", aliasName: "a")])
        // Simulate a crash between moving a collection out and rewriting the aliases.
        try disk.rename(joinPath(storage.path, "collections", "c"), joinPath(storage.path, "tmp", "delete-crashed"))
        let reopened = try await storage.open()
        #expect(await reopened.collectionNames.isEmpty)
        #expect(await reopened.listAliases().isEmpty)
        #expect(try disk.listDirectory(joinPath(storage.path, "tmp")).isEmpty)
    }

    @Test func damagedConfigIsAClearError() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(vectors))
        try PosixDisk().writeFile(joinPath(storage.path, "collections", "c", "config.json"), Array("{not json".utf8))
        do {
            _ = try await storage.open()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("collections/c/config.json"))
            #expect("\(error)".contains("damaged"))
        }
    }
}

@Suite struct RoutingTests {
    /// The routing function is part of the on-disk contract: these values must never change.
    @Test func shardIndexIsStable() {
        #expect((0..<8).map { PointRouting.shardIndex(of: .number(UInt64($0)), shardCount: 6) } == [0, 2, 3, 2, 5, 1, 3, 1])
        #expect(PointRouting.shardIndex(of: .uuid(0x550e_8400_e29b_41d4, 0xa716_4466_5544_0000), shardCount: 6) == 5)
    }

    @Test func shardIndexSpreadsEvenly() {
        var counts = [Int](repeating: 0, count: 6)
        for i in 0..<60_000 { counts[PointRouting.shardIndex(of: .number(UInt64(i)), shardCount: 6)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }
}

@Suite struct OptimizerDefaultTests {
    /// Qdrant's defaults: 10,000 KB indexing threshold, 256,000 KB per indexing thread as the
    /// largest segment, one segment per two CPUs (2 to 8); 0 turns indexing off.
    @Test func thresholdsFollowQdrantsDefaults() async throws {
        let storage = TempStorage()
        let toc = try await storage.open()
        try await toc.createCollection("d", request(#"{"vectors":{"size":4,"distance":"Dot"},"hnsw_config":{"max_indexing_threads":3}}"#))
        try await toc.createCollection("z", request(#"{"vectors":{"size":4,"distance":"Dot"},"optimizers_config":{"indexing_threshold":0,"default_segment_number":5,"max_segment_size":7}}"#))
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let defaults = try await toc.collection("d").thresholds
        #expect(defaults.indexingThresholdBytes == 10_000 * 1024)
        #expect(defaults.maxSegmentBytes == 3 * 256_000 * 1024)
        #expect(defaults.segmentNumber == min(max(cpus / 2, 2), 8) && (2...8).contains(defaults.segmentNumber))
        let set = try await toc.collection("z").thresholds
        #expect(set.indexingThresholdBytes == Int.max && set.segmentNumber == 5 && set.maxSegmentBytes == 7 * 1024)
    }
}

@Suite struct CollectionStatusTests {
    func points(_ range: Range<Int>) -> UpdateOperation {
        .upsert(range.map { PointStruct(id: .number(UInt64($0)), vectors: ["": [1, 2, 3, Float($0)]]) })
    }

    /// green → yellow while an optimization is due → green; red with the error after a failed one,
    /// green again once one succeeds.
    @Test func statusFollowsTheOptimizer() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk)
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"},"optimizers_config":{"indexing_threshold":1}}"#))
        let collection = try await toc.collection("c")
        #expect(try await toc.collectionInfo("c").status == .green)
        _ = try await collection.update(PointsUpdate(points(0..<100)), wait: true)
        #expect(try await toc.collectionInfo("c").status == .yellow)
        disk.fail(.fileSync, whenPathContains: "/segments/")
        await #expect(throws: StorageError.self) { try await toc.optimizeAll() }
        let failed = try await toc.collectionInfo("c")
        #expect(failed.status == .red)
        guard case .error(let message) = failed.optimizerStatus else {
            Issue.record("expected an optimizer error, got \(failed.optimizerStatus)")
            return
        }
        #expect(message.contains("indexing optimization failed"))
        disk.heal()
        try await toc.optimizeAll()
        let healed = try await toc.collectionInfo("c")
        #expect(healed.status == .green && healed.optimizerStatus == .ok && healed.pointsCount == 100)
    }
}

/// A nearly full disk (`FaultyDisk` reporting little free space): writes that add data are refused
/// with `insufficientStorage`, deletes and reads go on, and everything resumes once there is room.
@Suite struct DiskSpaceTests {
    let reserve: UInt64 = 10 << 20

    func points(_ range: Range<Int>) -> UpdateOperation {
        .upsert(range.map { PointStruct(id: .number(UInt64($0)), vectors: ["": [1, 2, 3, Float($0)]]) })
    }

    @Test func theGuardRefusesBelowTheReserveAndResumesAMarginAbove() throws {
        let disk = FaultyDisk()
        let space = SpaceGuard(path: NSTemporaryDirectory(), disk: disk, reserve: reserve, maxAge: .zero)
        disk.setAvailableBytes(reserve + (4 << 20))
        #expect(space.admit() == nil)
        disk.setAvailableBytes(reserve - 1)
        let refusal = try #require(space.admit())
        #expect(refusal.contains("10.0 MiB kept in reserve (storage.disk_reserve_mb)") && refusal.contains("once 11.0 MiB are free"))
        disk.setAvailableBytes(reserve + (512 << 10))  // above the reserve, not yet a margin above it
        #expect(space.admit()?.contains("the 11.0 MiB it needs to take writes again") == true)
        disk.setAvailableBytes(reserve + (1 << 20))
        #expect(space.admit() == nil)
        // Work of a known size must leave the reserve free.
        #expect(space.room(for: 1 << 20) == nil)
        #expect(space.room(for: (1 << 20) + 1)?.contains("it needs 1.0 MiB") == true)
        #expect(SpaceGuard.defaultReserve(capacity: 64 << 20) == 64 << 20 / 10)
        #expect(SpaceGuard.defaultReserve(capacity: 100 << 30) == 1 << 30)
        #expect(SpaceGuard.defaultReserve(capacity: 10 << 30) == 256 << 20)
    }

    @Test func aNearlyFullDiskRefusesWritesButNotDeletesOrReads() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let space = SpaceGuard(path: NSTemporaryDirectory(), disk: disk, reserve: reserve, maxAge: .zero)
        let toc = try await storage.open(disk: disk, space: space)
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"}}"#))
        let collection = try await toc.collection("c")
        _ = try await collection.update(PointsUpdate(points(0..<10)), wait: true)
        disk.setAvailableBytes(reserve / 2)

        await #expect(throws: StorageError.self) { try await collection.update(PointsUpdate(points(10..<20)), wait: true) }
        do {
            _ = try await collection.update(PointsUpdate(points(10..<20)), wait: true)
        } catch {
            guard case .insufficientStorage(let message) = error else { throw error }
            #expect(message.contains("kept in reserve"))
        }
        _ = try await collection.update(PointsUpdate(.delete([.number(3)])), wait: true)
        #expect(try await toc.collectionInfo("c").pointsCount == 9)
        let info = try await toc.collectionInfo("c")
        #expect(info.status == .red)
        guard case .error(let reason) = info.optimizerStatus else {
            Issue.record("expected the reason in the optimizer status, got \(info.optimizerStatus)")
            return
        }
        #expect(reason.hasPrefix("Insufficient storage: "))
        await #expect(throws: StorageError.insufficientStorage("The snapshot is refused: " + space.room(for: disk.directoryBytes(joinPath(storage.path, "collections", "c")))!)) {
            _ = try await toc.createSnapshot("c", now: 0)
        }

        disk.setAvailableBytes(nil)
        _ = try await collection.update(PointsUpdate(points(10..<20)), wait: true)
        #expect(try await toc.collectionInfo("c").pointsCount == 19)
        #expect(try await toc.collectionInfo("c").optimizerStatus == .ok)
    }

    @Test func anOptimizationWaitsForRoomInsteadOfStarting() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        // No reserve: an optimization may use it, so only the free space counts.
        let space = SpaceGuard(path: NSTemporaryDirectory(), disk: disk, reserve: 0, maxAge: .zero)
        let toc = try await storage.open(disk: disk, space: space)
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"},"optimizers_config":{"indexing_threshold":1}}"#))
        let collection = try await toc.collection("c")
        _ = try await collection.update(PointsUpdate(points(0..<100)), wait: true)
        try await toc.flushAll(force: true)
        // Room for writes, not for twice the segment.
        disk.setAvailableBytes(1024)
        #expect(space.admit() == nil)
        try await toc.optimizeAll()
        let waiting = try await toc.collectionInfo("c")
        #expect(waiting.status == .red && waiting.indexedVectorsCount == 0)
        guard case .error(let reason) = waiting.optimizerStatus else {
            Issue.record("expected the postponement in the optimizer status, got \(waiting.optimizerStatus)")
            return
        }
        #expect(reason.hasPrefix("Not enough space available for optimization: it needs "))
        disk.setAvailableBytes(nil)
        try await toc.optimizeAll()
        let done = try await toc.collectionInfo("c")
        #expect(done.status == .green && done.indexedVectorsCount == 100 && done.optimizerStatus == .ok)
    }

    @Test func leftoversOfUnfinishedWritesAreRemovedAtStart() async throws {
        let storage = TempStorage()
        let disk = PosixDisk()
        let toc = try await storage.open()
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"}}"#))
        let shard = joinPath(storage.path, "collections", "c", "0")
        try disk.writeFile(joinPath(shard, "segments.json.tmp"), Array("{\"cut".utf8))
        try disk.writeFile(joinPath(storage.path, "aliases", "data.json.tmp"), [])
        try disk.createDirectories(joinPath(storage.path, "snapshots", "c"))
        try disk.writeFile(joinPath(storage.path, "snapshots", "c", "c-1-2026.snapshot.partial"), [1, 2, 3])
        _ = try await storage.open()
        #expect(!disk.fileExists(joinPath(shard, "segments.json.tmp")))
        #expect(!disk.fileExists(joinPath(storage.path, "aliases", "data.json.tmp")))
        #expect(!disk.fileExists(joinPath(storage.path, "snapshots", "c", "c-1-2026.snapshot.partial")))
        #expect(disk.fileExists(joinPath(storage.path, "collections", "c", "config.json")))
    }

    @Test func aStartRewritesNothingThatDidNotChange() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk, peerID: 1)
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"}}"#))
        _ = try await toc.collection("c").update(PointsUpdate(points(0..<10)), wait: true)
        try await toc.flushAll(force: true)
        // Every write of a whole file fails, as on a full disk: a single node (another peer id
        // each start) still opens, and serves what it has.
        disk.fail(.writeFile, whenPathContains: storage.path)
        let reopened = try await storage.open(disk: disk, peerID: 2)
        #expect(try await reopened.collectionInfo("c").pointsCount == 10)
    }
}
