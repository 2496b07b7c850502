import Consensus
import DiskIO
import Logging
import QuiverJSON
import QuiverModel
import QuiverTesting
import Storage
import Testing

/// The metadata state machine on a one-member engine: proposals apply to the catalogue and to the
/// node's storage; replays and snapshots converge without touching collections twice.
@Suite struct ConsensusManagerTests {
    let vectors = #"{"vectors":{"size":4,"distance":"Cosine"}}"#

    func manager(_ storage: TempStorage) async throws -> (ConsensusManager, LocalConsensus, TableOfContent) {
        let toc = try await storage.open()
        let manager = try ConsensusManager(toc: toc, peerId: 1, disk: PosixDisk(), logger: Logger(label: "test"))
        let engine = LocalConsensus(machine: manager, recordsLog: true)
        manager.attach(engine: engine, peers: nil)
        return (manager, engine, toc)
    }

    @Test func proposalsApplyToTheCatalogueAndToStorage() async throws {
        let storage = TempStorage()
        let (manager, _, toc) = try await manager(storage)
        let config = toc.effectiveConfig(try request(vectors), peers: 1)
        #expect(try await manager.propose(.createCollection(name: "books", config: config, shards: ShardPlacement.initial(config, peers: [1]))))
        #expect(try await manager.propose(.changeAliases([.create(collectionName: "books", aliasName: "lib")])))
        var update = UpdateCollection()
        update.optimizersConfig = try JSONValueDecoder().decode(OptimizersConfigDiff.self, from: Array(#"{"indexing_threshold":77}"#.utf8))
        #expect(try await manager.propose(.updateCollection(name: "lib", update: update)))
        #expect(try await manager.propose(.setMetadataKey(key: "k", value: ["a": 1])))

        #expect(await toc.collectionNames == ["books"])
        #expect(await toc.listAliases() == [AliasDescription(aliasName: "lib", collectionName: "books")])
        #expect(try await toc.collectionInfo("books").config.optimizerConfig.indexingThreshold == 77)
        #expect(manager.metadata.keys["k"] == ["a": 1])
        #expect(manager.metadata.appliedIndex == 4)

        // Outcomes come back to the proposer: errors as errors, a missing collection as false.
        await #expect(throws: StorageError.alreadyExists("Collection `books` already exists!")) {
            try await manager.propose(.createCollection(name: "books", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        }
        #expect(try await manager.propose(.deleteCollection(name: "nothing")) == false)
        #expect(try await manager.propose(.deleteCollection(name: "books")))
        #expect(await toc.collectionNames == [])
        #expect(await toc.listAliases() == [])
    }

    /// A change the storage cannot take (the disk full) is applied again until it takes: the
    /// storage catches up with the catalogue by itself once there is room.
    @Test func aChangeTheStorageCouldNotTakeIsRetriedUntilItApplies() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let toc = try await storage.open(disk: disk)
        let manager = try ConsensusManager(toc: toc, peerId: 1, disk: disk, logger: Logger(label: "test"))
        let engine = LocalConsensus(machine: manager, recordsLog: true)
        manager.attach(engine: engine, peers: nil)
        let config = toc.effectiveConfig(try request(vectors), peers: 1)
        disk.fail(.writeFile, whenPathContains: "/collections/")
        await #expect(throws: StorageError.self) {
            try await manager.propose(.createCollection(name: "books", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        }
        #expect(await toc.collectionNames == [])
        #expect(manager.metadata.collections["books"] != nil, "the catalogue has it: every peer applied it")
        await manager.retryStorageEffects(every: .zero)
        #expect(await toc.collectionNames == [])
        disk.heal()
        await manager.retryStorageEffects(every: .zero)
        #expect(await toc.collectionNames == ["books"])
        #expect(try await toc.collectionInfo("books").config.params.vectors == config.params.vectors)
    }

    @Test func aClustersQuotaFollowsItsCatalogueAndIsRecorded() async throws {
        let storage = TempStorage()
        try PosixDisk().createDirectories(storage.path)
        let file = joinPath(storage.path, "quota.json")
        let quota = try NodeQuota(storagePath: storage.path, disk: PosixDisk(), memory: nil, file: file)
        let toc = try await storage.open(quota: quota)
        let manager = try ConsensusManager(toc: toc, peerId: 1, disk: PosixDisk(), logger: Logger(label: "test"))
        manager.attach(engine: LocalConsensus(machine: manager), peers: nil)
        let config = QuotaConfig(enabled: true, maxDiskUsagePercent: 80)
        #expect(try await manager.propose(.setQuota(config)))
        #expect(quota.config == config)
        #expect(try NodeQuota(storagePath: storage.path, disk: PosixDisk(), memory: nil, file: file).config == config)
        // A snapshot from the leader brings its quota; a catalogue without one, the default.
        var state = manager.metadata
        state.quota = QuotaConfig(enabled: true, maxResidentMemoryPercent: 60)
        try manager.install(state)
        #expect(quota.config == state.quota)
        state.quota = nil
        state.appliedIndex += 1
        try manager.install(state)
        #expect(quota.config == QuotaConfig())
        // `--reinit` founds the cluster again with the quota this peer knew.
        quota.configure(config)
        #expect(await toc.currentMetadata().quota == config)
    }

    @Test func replayAfterRestartLeavesStorageAlone() async throws {
        let storage = TempStorage()
        let (manager, engine, toc) = try await manager(storage)
        let config = toc.effectiveConfig(try request(vectors), peers: 1)
        _ = try await manager.propose(.createCollection(name: "a", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        _ = try await manager.propose(.deleteCollection(name: "a"))
        _ = try await manager.propose(.createCollection(name: "a", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        // Data written after the last metadata change must survive the replay.
        let marker = joinPath(storage.path, "collections", "a", "marker")
        try PosixDisk().writeFile(marker, [1])

        // A restart: libraft replays the whole log into a fresh state machine.
        let (again, _, reopened) = try await self.manager(storage)
        for (i, entry) in engine.log.enumerated() { again.apply(index: UInt64(i + 1), entry: entry) }
        #expect(again.metadata == manager.metadata)
        #expect(await reopened.collectionNames == ["a"])
        #expect(PosixDisk().fileExists(marker))
    }

    @Test func aSnapshotBringsAnotherPeersStorageToTheSameState() async throws {
        let leaderStorage = TempStorage()
        let (leader, _, toc) = try await manager(leaderStorage)
        let config = toc.effectiveConfig(try request(vectors), peers: 1)
        _ = try await leader.propose(.createCollection(name: "kept", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        _ = try await leader.propose(.changeAliases([.create(collectionName: "kept", aliasName: "k")]))

        // The follower has a stale collection the cluster deleted while it was away.
        let followerStorage = TempStorage()
        let (follower, _, followerToc) = try await manager(followerStorage)
        _ = try await follower.propose(.createCollection(name: "stale", config: config, shards: ShardPlacement.initial(config, peers: [1])))
        try follower.restore(leader.snapshot())
        #expect(await followerToc.collectionNames == ["kept"])
        #expect(await followerToc.listAliases() == [AliasDescription(aliasName: "k", collectionName: "kept")])
        #expect(follower.snapshotsRestored == 1)
        #expect(follower.metadata == leader.metadata)
    }
}
