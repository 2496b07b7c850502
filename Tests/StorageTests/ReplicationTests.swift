import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
import Shard
@testable import Storage
import Testing

/// Peers in one process holding collection `c` with the given shards.
struct InProcessCluster {
    let network: InProcessNetwork
    var tocs: [UInt64: TableOfContent]
    let storages: [TempStorage]
    var catalogue: ClusterMetadata

    init(peers: [UInt64], shards: [ShardInfo], slowAfter: Duration = .seconds(1), ring: PointRing? = nil) async throws {
        network = InProcessNetwork(slowAfter: slowAfter)
        var storages: [TempStorage] = []
        var tocs: [UInt64: TableOfContent] = [:]
        for peer in peers {
            let storage = TempStorage()
            let toc = TableOfContent(storagePath: storage.path, disk: PosixDisk(), logger: Logger(label: "test"))
            await toc.enableCluster(peerID: peer, network: network)
            try await toc.load()
            network.add(peer, toc)
            storages.append(storage)
            tocs[peer] = toc
        }
        self.storages = storages
        self.tocs = tocs
        let config = try request(#"{"vectors":{"size":2,"distance":"Euclid"},"shard_number":\#(shards.count)}"#)
            .effectiveConfig(defaults: CollectionDefaults())
        catalogue = ClusterMetadata()
        _ = catalogue.apply(.createCollection(name: "c", config: config, shards: shards, routing: ring.map { ShardRouting(ring: $0) }))
        for toc in tocs.values { try await toc.reconcile(with: catalogue) }
    }

    func collection(_ peer: UInt64) async throws -> Collection { try await tocs[peer]!.collection("c") }

    /// `peer` starts again from its storage (new collections, new clocks) and catches up with
    /// `catalogue` (the first one when nil).
    mutating func restart(_ peer: UInt64, catalogue: ClusterMetadata? = nil) async throws {
        let index = tocs.keys.sorted().firstIndex(of: peer)!
        let toc = TableOfContent(storagePath: storages[index].path, disk: PosixDisk(), logger: Logger(label: "test"))
        await toc.enableCluster(peerID: peer, network: network)
        try await toc.load()
        try await toc.reconcile(with: catalogue ?? self.catalogue)
        network.add(peer, toc)
        tocs[peer] = toc
    }

    /// The points `peer` holds of shard `shard`, with their payloads.
    func held(_ peer: UInt64, shard: UInt32) async throws -> [PointRecord] {
        guard case .records(let records) = try await collection(peer).runLocal(
            .scroll(offset: nil, limit: 100_000, filter: nil, withPayload: .all, withVector: .none), shards: [shard]) else { return [] }
        return records
    }
}

@Suite struct ReplicationTests {
    static func point(_ id: UInt64, _ writer: String) -> PointStruct {
        PointStruct(id: .number(id), vectors: ["": [Float(id), 1]], payload: JSONObject([("writer", .string(writer))]))
    }

    /// Shard 0 on peers 2 and 3 with 10 points; peer 1 holds none of it and reads it remotely.
    /// Answers the replica peer 1 reads from first, and the other one.
    static func remotelyRead(slowAfter: Duration) async throws -> (InProcessCluster, first: UInt64, other: UInt64) {
        let cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [2, 3])], slowAfter: slowAfter)
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert((0..<10).map { point($0, "a") })), wait: true)
        cluster.network.resetCounts()
        _ = try await cluster.collection(1).count()
        let first = try #require(cluster.network.reads.keys.first)
        return (cluster, first, first == 2 ? 3 : 2)
    }

    @Test func aSlowReplicaIsHedgedAndThenAvoided() async throws {
        let (cluster, first, other) = try await Self.remotelyRead(slowAfter: .milliseconds(100))
        cluster.network.delayReads(of: first, by: .seconds(120))

        let started = ContinuousClock.now
        #expect(try await cluster.collection(1).count() == 10)
        let took = ContinuousClock.now - started
        #expect(took < .seconds(60), "the read waited \(took) for a stalled replica")
        #expect(!cluster.network.isResponsive(first))
        // The next read goes to the responsive replica directly.
        cluster.network.resetCounts()
        #expect(try await cluster.collection(1).count() == 10)
        #expect(cluster.network.reads == [other: 1])
    }

    @Test func aFailedHedgeLeavesTheSlowReplicaToAnswer() async throws {
        let (cluster, first, other) = try await Self.remotelyRead(slowAfter: .milliseconds(50))
        cluster.network.delayReads(of: first, by: .milliseconds(400))
        cluster.network.setDown(other)
        #expect(try await cluster.collection(1).count() == 10)
        // Also when the hedge answers with an error of its own.
        cluster.network.setDown(other, false)
        cluster.network.breakReads(of: other)
        #expect(try await cluster.collection(1).count() == 10)
    }

    @Test func readFanOutFactorAsksMoreReplicasAtOnce() async throws {
        // Hedging after 30 s only: any quicker answer below comes from the fan-out.
        var cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2, 3])], slowAfter: .seconds(30))
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert((0..<10).map { Self.point($0, "a") })), wait: true)
        func setFanOut(_ factor: UInt32) async throws {
            var update = UpdateCollection()
            var params = CollectionParamsDiff()
            params.readFanOutFactor = factor
            update.params = params
            _ = try cluster.catalogue.apply(.updateCollection(name: "c", update: update)).get()
            for toc in cluster.tocs.values { try await toc.reconcile(with: cluster.catalogue) }
        }
        // Without it, a peer holding a replica reads only its own.
        cluster.network.resetCounts()
        #expect(try await cluster.collection(1).count() == 10)
        #expect(cluster.network.reads.isEmpty)
        // With 1, one other replica is asked at the same time; with 2, both.
        try await setFanOut(1)
        cluster.network.resetCounts()
        #expect(try await cluster.collection(1).count() == 10)
        #expect(cluster.network.reads.values.reduce(0, +) == 1)
        try await setFanOut(2)
        cluster.network.resetCounts()
        #expect(try await cluster.collection(1).count() == 10)
        #expect(cluster.network.reads == [2: 1, 3: 1])
        // A peer without a replica asks two at once, so one stalled replica costs nothing.
        cluster.catalogue.shards["c"] = [ShardInfo(id: 0, peers: [2, 3])]
        try await setFanOut(1)
        cluster.network.delayReads(of: 2, by: .seconds(120))
        let started = ContinuousClock.now
        #expect(try await cluster.collection(1).count() == 10)
        let took = ContinuousClock.now - started
        #expect(took < .seconds(10), "the read waited \(took) for a stalled replica")
    }

    @Test func orderedWritesGoThroughTheLeaderAndKeepReplicasIdentical() async throws {
        let cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2, 3])])
        // Strong and medium writes from peers 1 and 2 go to peer 3, the highest replica.
        cluster.network.resetCounts()
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert([Self.point(0, "x")])), wait: true, ordering: .strong)
        _ = try await cluster.collection(2).update(PointsUpdate(.upsert([Self.point(0, "x")])), wait: true, ordering: .medium)
        #expect(cluster.network.forwards == [3: 2])
        // Weak writes do not.
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert([Self.point(0, "x")])), wait: true)
        #expect(cluster.network.forwards == [3: 2])

        // Concurrent strong writes from two peers to the same points: every replica ends equal.
        let tocs = cluster.tocs
        await withTaskGroup(of: Void.self) { group in
            for writer in [UInt64(1), 2] {
                group.addTask {
                    for round in 0..<20 {
                        let points = (0..<5).map { Self.point($0, "\(writer)-\(round)") }
                        _ = try? await tocs[writer]!.collection("c").update(PointsUpdate(.upsert(points)), wait: round % 2 == 0, ordering: .strong)
                    }
                }
            }
        }
        _ = try await cluster.collection(3).update(PointsUpdate(.upsert([Self.point(100, "end")])), wait: true, ordering: .strong)
        let replicas = try await [1, 2, 3].asyncMap { try await cluster.held($0, shard: 0) }
        #expect(replicas[0].count == 6)
        #expect(replicas[0] == replicas[1] && replicas[1] == replicas[2])
    }

    @Test func replicatedWritesCarryClocksThatRejectStaleSendsAcrossSenderRestarts() async throws {
        var cluster = try await InProcessCluster(peers: [1, 2], shards: [ShardInfo(id: 0, peers: [1, 2])])
        // A fresh clock's first send (tick 0) is rejected by both replicas and sent again at tick 1.
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert([Self.point(1, "a")])), wait: true)
        for peer: UInt64 in [1, 2] {
            #expect(try await cluster.collection(peer).shards[0]!.newestClocks.tick(of: 1, clock: 0) == 1)
        }
        // A stale duplicate of that send (same tick, another token) is skipped and answered with the tick.
        let stale = try await cluster.collection(2).applyLocal([0: .upsert([Self.point(1, "stale")])],
                                                               clocks: [0: ClockTag(peerID: 1, clockID: 0, tick: 1, token: 42)], filter: nil, wait: true)
        #expect(stale.rejected == [0: 1])
        #expect(try await cluster.held(2, shard: 0).first?.payload?["writer"] == .string("a"))
        // Peer 1 restarts with fresh clocks: its first send is rejected with tick 1 and goes on at 2.
        try await cluster.restart(1)
        _ = try await cluster.collection(1).update(PointsUpdate(.upsert([Self.point(1, "b")])), wait: true)
        for peer: UInt64 in [1, 2] {
            #expect(try await cluster.collection(peer).shards[0]!.newestClocks.tick(of: 1, clock: 0) == 2)
            #expect(try await cluster.held(peer, shard: 0).first?.payload?["writer"] == .string("b"))
        }
    }

    @Test func aStrongLeaderDownFailsRetryablyAndMediumFailsOver() async throws {
        let cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2, 3])])
        let reporter = CatalogueReporter(cluster.catalogue, Array(cluster.tocs.values))
        await cluster.tocs[1]!.reportReplicaFailures(to: reporter)
        cluster.network.setDown(3)
        let one = try await cluster.collection(1)
        await #expect(throws: StorageError.serviceError(
            "Failed to apply update with strong ordering via leader peer 3: Service unavailable: peer 3 is down")) {
            _ = try await one.update(PointsUpdate(.upsert([Self.point(0, "s")])), wait: true, ordering: .strong)
        }
        // Peer 3 is disabled here and reported: medium turns to peer 2, strong keeps failing.
        for _ in 0..<200 where !reporter.lock.withLock({ reporter.reports.map(\.1) }).contains(3) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(reporter.lock.withLock { reporter.reports.map(\.1) } == [3])
        cluster.network.resetCounts()
        _ = try await one.update(PointsUpdate(.upsert([Self.point(0, "m")])), wait: true, ordering: .medium)
        #expect(cluster.network.forwards == [2: 1])
        await #expect(throws: StorageError.self) {
            _ = try await one.update(PointsUpdate(.upsert([Self.point(0, "s")])), wait: true, ordering: .strong)
        }
        #expect(try await cluster.held(2, shard: 0).first?.payload?["writer"] == .string("m"))
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

@Suite struct ShardHolderTests {
    @Test func scopesFollowShardKeysAndPointsHashToOneShardPerGroup() throws {
        let shards = [ShardInfo(id: 2, key: .string("b"), peers: [1]), ShardInfo(id: 0, key: .string("a"), peers: [1]),
                      ShardInfo(id: 1, key: .string("a"), peers: [2])]
        let keyed = ShardHolder(shards, sharding: .custom)
        #expect(keyed.shards.map(\.id) == [0, 1, 2])
        #expect(throws: StorageError.badInput("Shard key not specified")) { try keyed.scope(nil, write: true) }
        #expect(try keyed.scope(nil, write: false).map { $0.map(\.id).sorted() }.sorted { $0[0] < $1[0] } == [[0, 1], [2]])
        #expect(try keyed.scope(.keys([.string("a")]), write: true).map { $0.map(\.id) } == [[0, 1]])
        #expect(try keyed.scope(.fallback(target: .string("x"), fallback: .string("b")), write: true).map { $0.map(\.id) } == [[2]])
        #expect(throws: StorageError.badInput("Shard key \"x\" not found")) { try keyed.scope(.keys([.string("x")]), write: false) }

        let auto = ShardHolder([ShardInfo(id: 0, peers: [1]), ShardInfo(id: 1, peers: [2]), ShardInfo(id: 2, peers: [3])], sharding: nil)
        let groups = try auto.scope(nil, write: true)
        let points = (0..<30).map { PointStruct(id: .number(UInt64($0)), vectors: ["": [1, 1]]) }
        let split = auto.split(.upsert(points), byFilter: false, over: groups)
        #expect(split.values.map(\.ids.count).reduce(0, +) == 30)
        for (shard, part) in split {
            #expect(part.ids.allSatisfy { auto.targets(of: $0, in: groups).map(\.id) == [shard] })
        }
        #expect(Set(auto.split(.delete([.number(1)]), byFilter: true, over: groups).keys) == [0, 1, 2])
    }
}
