import DiskIO
import Foundation
import Logging
import QuiverJSON
import QuiverModel
import Shard
import Storage
import Synchronization
import Testing
import VectorIndex

/// Peers in one process: each a TableOfContent with its own storage, reaching the others through
/// a network that calls their collections directly and counts the calls.
final class InProcessNetwork: ShardNetwork, @unchecked Sendable {
    private struct State {
        var tocs: [UInt64: TableOfContent] = [:]
        var down: Set<UInt64> = []
        var reads: [UInt64: Int] = [:]
        var updates: [UInt64: Int] = [:]
        var forwards: [UInt64: Int] = [:]
        /// Peers whose reads take this long.
        var delays: [UInt64: Duration] = [:]
        var slow: Set<UInt64> = []
        /// Peers whose reads fail with an error of their own (not unreachable).
        var broken: Set<UInt64> = []
        /// Decides the fate of an update call to a peer from the call's ``callKey(_:)``.
        var updateFaults: (@Sendable (_ peer: UInt64, _ call: UInt64) -> UpdateFault?)?
        /// Update calls a peer applied for every shard, in order.
        var delivered: [DeliveredUpdate] = []
    }

    struct DeliveredUpdate: Sendable {
        let peer: UInt64
        let collection: String
        let operations: [UInt32: UpdateOperation]
        let clocks: [UInt32: ClockTag]
    }

    enum UpdateFault: Sendable {
        /// The call never arrives.
        case drop
        /// The peer applies the update; its answer is lost.
        case loseReply
    }
    private let state = Mutex(State())
    let slowAfter: Duration

    init(slowAfter: Duration = .seconds(1)) { self.slowAfter = slowAfter }

    func add(_ peer: UInt64, _ toc: TableOfContent) { state.withLock { $0.tocs[peer] = toc } }
    func setDown(_ peer: UInt64, _ down: Bool = true) { state.withLock { if down { $0.down.insert(peer) } else { $0.down.remove(peer) } } }
    func delayReads(of peer: UInt64, by delay: Duration) { state.withLock { $0.delays[peer] = delay } }
    func breakReads(of peer: UInt64) { state.withLock { _ = $0.broken.insert(peer) } }
    var reads: [UInt64: Int] { state.withLock { $0.reads } }
    var updates: [UInt64: Int] { state.withLock { $0.updates } }
    var forwards: [UInt64: Int] { state.withLock { $0.forwards } }
    func resetCounts() { state.withLock { $0.reads = [:]; $0.updates = [:]; $0.forwards = [:] } }
    func injectUpdateFaults(_ faults: (@Sendable (_ peer: UInt64, _ call: UInt64) -> UpdateFault?)?) {
        state.withLock { $0.updateFaults = faults }
    }
    var delivered: [DeliveredUpdate] { state.withLock { $0.delivered } }

    /// An update call by its content: its shards and their clock tags (sender, clock, tick), which
    /// tell calls, and attempts of one write, apart whatever order the calls arrive in.
    static func callKey(_ operations: [UInt32: UpdateOperation], _ clocks: [UInt32: ClockTag]) -> UInt64 {
        var key: UInt64 = 0
        for shard in operations.keys.sorted() {
            let tag = clocks[shard]
            key = SplitMix.hash(key, UInt64(shard), tag?.peerID ?? 0, UInt64(tag?.clockID ?? 0), tag?.tick ?? 0)
        }
        return key
    }
    func isResponsive(_ peer: UInt64) -> Bool { state.withLock { !$0.slow.contains(peer) } }
    func noteSlow(_ peer: UInt64) { state.withLock { _ = $0.slow.insert(peer) } }

    private func target(_ peer: UInt64, counting read: Bool) throws(StorageError) -> TableOfContent {
        let (toc, down) = state.withLock { s in
            if read { s.reads[peer, default: 0] += 1 } else { s.updates[peer, default: 0] += 1 }
            return (s.tocs[peer], s.down.contains(peer))
        }
        guard let toc, !down else { throw .unavailable("peer \(peer) is down") }
        return toc
    }

    func read(_ request: ShardRequest, collection: String, shards: [UInt32], on peer: UInt64) async throws(StorageError) -> ShardResponse {
        // Through JSON, as the p2p service carries it.
        let wire = try? JSONValueDecoder().decode(ShardRequest.self, from: JSONValueEncoder().encodeBytes(request))
        guard let wire else { throw .serviceError("request does not survive encoding") }
        let toc = try target(peer, counting: true)
        if state.withLock({ $0.broken.contains(peer) }) { throw .serviceError("peer \(peer) failed the read") }
        if let delay = state.withLock({ $0.delays[peer] }) { try? await Task.sleep(for: delay) }
        let response = try await toc.collection(collection).runLocal(wire, shards: shards)
        guard let back = try? JSONValueDecoder().decode(ShardResponse.self, from: JSONValueEncoder().encodeBytes(response)) else {
            throw .serviceError("response does not survive encoding")
        }
        return back
    }

    func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                collection: String, wait: Bool, on peer: UInt64) async throws(StorageError) -> UpdateAck {
        let fault = state.withLock { $0.updateFaults?(peer, Self.callKey(operations, clocks)) }
        if fault == .drop { throw .unavailable("the update to peer \(peer) was lost") }
        let ack = try await target(peer, counting: false).collection(collection).applyLocal(operations, clocks: clocks, filter: filter,
                                                                                             condition: condition, wait: wait)
        if ack.rejected.isEmpty && ack.failed.isEmpty && filter == nil && condition == nil {
            state.withLock { $0.delivered.append(DeliveredUpdate(peer: peer, collection: collection, operations: operations, clocks: clocks)) }
        }
        if fault == .loseReply { throw .unavailable("the answer of peer \(peer) was lost") }
        return ack
    }

    func pushSnapshot(_ bytes: [UInt8], offset: UInt64, final: Bool, transfer: ShardTransfer, collection: String,
                      to peer: UInt64) async throws(StorageError) {
        try await target(peer, counting: false).receiveTransferSnapshot(collection, transfer: transfer, offset: offset, bytes: bytes, final: final)
    }

    func forward(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String, wait: Bool,
                 ordering: WriteOrdering, to peer: UInt64) async throws(StorageError) -> Result<UInt64, StorageError> {
        state.withLock { $0.forwards[peer, default: 0] += 1 }
        let leader = try await target(peer, counting: false).collection(collection)
        do {
            return .success(try await leader.coordinate(operations, filter: filter, condition: condition, wait: wait))
        } catch {
            return .failure(error)
        }
    }
}

@Suite struct ShardingTests {
    @Test func placementSpreadsShardsAndReplicasEvenly() {
        let six = ShardPlacement.place(count: 6, replicas: 1, peers: [30, 10, 20], firstID: 0, key: nil, existing: [])
        #expect(six.map(\.id) == [0, 1, 2, 3, 4, 5])
        #expect(six.map(\.peers) == [[10], [20], [30], [10], [20], [30]])
        let replicated = ShardPlacement.place(count: 3, replicas: 2, peers: [1, 2, 3], firstID: 0, key: nil, existing: [])
        #expect(replicated.allSatisfy { Set($0.peers).count == 2 })
        var load: [UInt64: Int] = [:]
        for shard in replicated { for peer in shard.peers { load[peer, default: 0] += 1 } }
        #expect(load == [1: 2, 2: 2, 3: 2])
        // More replicas than peers: one per peer.
        #expect(ShardPlacement.place(count: 1, replicas: 5, peers: [1, 2], firstID: 0, key: nil, existing: [])[0].peers == [1, 2])
        // New shards of a key go to the least loaded peers and continue the ids.
        let existing = [ShardInfo(id: 0, key: .string("a"), peers: [1]), ShardInfo(id: 1, key: .string("a"), peers: [2])]
        let added = ShardPlacement.place(count: 2, replicas: 1, peers: [1, 2, 3], firstID: 2, key: .number(9), existing: existing)
        #expect(added == [ShardInfo(id: 2, key: .number(9), peers: [3]), ShardInfo(id: 3, key: .number(9), peers: [1])])
    }

    @Test func shardKeyOperationsAreCheckedAndDropWithTheCollection() throws {
        var state = ClusterMetadata()
        let auto = try request(#"{"vectors":{"size":2,"distance":"Dot"}}"#).effectiveConfig(defaults: CollectionDefaults(), peers: 3)
        #expect(auto.params.shardNumber == 3)
        let custom = try request(#"{"vectors":{"size":2,"distance":"Dot"},"sharding_method":"custom"}"#)
            .effectiveConfig(defaults: CollectionDefaults(), peers: 3)
        #expect(ShardPlacement.initial(custom, peers: [1, 2, 3]).isEmpty)
        _ = state.apply(.createCollection(name: "a", config: auto, shards: ShardPlacement.initial(auto, peers: [1, 2, 3])))
        _ = state.apply(.createCollection(name: "c", config: custom, shards: []))
        let keyShards = [ShardInfo(id: 0, key: .string("eu"), peers: [2])]
        #expect(throws: StorageError.self) { try state.apply(.createShardKey(collection: "a", shards: keyShards)).get() }
        #expect(try state.apply(.createShardKey(collection: "c", shards: keyShards)).get())
        #expect(throws: StorageError.self) { try state.apply(.createShardKey(collection: "c", shards: keyShards)).get() }
        #expect(throws: StorageError.self) { try state.apply(.dropShardKey(collection: "c", key: .string("us"))).get() }
        #expect(try state.apply(.setPayloadIndex(collection: "c", field: "f", schema: "keyword")).get())
        #expect(state.shards["c"] == keyShards && state.payloadIndexes["c"] == ["f": "keyword"])
        #expect(try state.apply(.dropShardKey(collection: "c", key: .string("eu"))).get())
        #expect(state.shards["c"] == [])
        _ = state.apply(.deleteCollection(name: "c"))
        #expect(state.shards["c"] == nil && state.payloadIndexes["c"] == nil && state.shards["a"]?.count == 3)
        // A catalogue written before shards existed still reads.
        let old = try JSONValueDecoder().decode(ClusterMetadata.self, from: Array(#"{"applied_index":3,"collections":{},"aliases":{},"keys":{}}"#.utf8))
        #expect(old.appliedIndex == 3 && old.shards.isEmpty)
    }

    /// Two peers holding three shards each of a six-shard collection, with replicas of shard 0 on both.
    func twoPeers() async throws -> (TableOfContent, TableOfContent, InProcessNetwork, [TempStorage]) {
        let (first, second, network, storages, _) = try await twoPeersWithCatalogue()
        return (first, second, network, storages)
    }

    /// Two peers holding collection `c` (6 shards, shard 0 on both), and the catalogue they follow.
    func twoPeersWithCatalogue() async throws -> (TableOfContent, TableOfContent, InProcessNetwork, [TempStorage], ClusterMetadata) {
        let network = InProcessNetwork()
        let storages = [TempStorage(), TempStorage()]
        var tocs: [TableOfContent] = []
        for (index, storage) in storages.enumerated() {
            let toc = TableOfContent(storagePath: storage.path, disk: PosixDisk(), logger: Logger(label: "test"))
            await toc.enableCluster(peerID: UInt64(index + 1), network: network)
            try await toc.load()
            network.add(UInt64(index + 1), toc)
            tocs.append(toc)
        }
        let config = try request(#"{"vectors":{"size":2,"distance":"Euclid"},"shard_number":6}"#).effectiveConfig(defaults: CollectionDefaults())
        var layout = ShardPlacement.place(count: 6, replicas: 1, peers: [1, 2], firstID: 0, key: nil, existing: [])
        layout[0].peers = [1, 2]
        var state = ClusterMetadata()
        _ = state.apply(.createCollection(name: "c", config: config, shards: layout))
        for toc in tocs { try await toc.reconcile(with: state) }
        return (tocs[0], tocs[1], network, storages, state)
    }

    @Test func requestsReachEveryShardWithOneCallPerPeer() async throws {
        let (first, second, network, storages) = try await twoPeers()
        _ = storages
        let points = (0..<600).map { PointStruct(id: .number(UInt64($0)), vectors: ["": [Float($0), 1]], payload: JSONObject([("n", .int(Int64($0)))])) }
        let one = try await first.collection("c")
        let two = try await second.collection("c")
        #expect(await one.clusterInfo().localShards.map(\.shardID) == [0, 2, 4])
        #expect(await two.clusterInfo().localShards.map(\.shardID) == [0, 1, 3, 5])
        _ = try await one.update(PointsUpdate(.upsert(points)), wait: true)
        // One call to the other peer for all its shards; twice, as a fresh clock's first tick (0)
        // is always rejected and the write is sent again at tick 1.
        #expect(network.updates == [2: 2])
        network.resetCounts()
        _ = try await one.update(PointsUpdate(.upsert(points)), wait: true)
        #expect(network.updates == [2: 1])

        network.resetCounts()
        #expect(try await two.count() == 600)
        #expect(try await one.count() == 600)
        var query = SearchRequest()
        query.query = .vector([300.2, 1])
        query.limit = 3
        query.offset = 1
        query.params.exact = true
        #expect(try await one.search(query).map(\.id) == [.number(301), .number(299), .number(302)])
        #expect(try await two.search(query).map(\.id) == [.number(301), .number(299), .number(302)])
        // One call to the other peer per request, whatever the number of its shards.
        #expect(network.reads == [1: 2, 2: 2])

        // Scroll pages merge in id order with the right next page.
        var ids: [PointID] = []
        var offset: PointID?
        repeat {
            let (page, next) = try await two.scroll(from: offset, limit: 77, withPayload: .none, withVector: .none)
            ids += page.map(\.id)
            offset = next
        } while offset != nil
        #expect(ids == (0..<600).map { .number(UInt64($0)) })

        // Each point is on its hashed shard; shard 0 is on both peers.
        for (toc, held) in [(first, [UInt32(0), 2, 4]), (second, [UInt32(0), 1, 3, 5])] {
            for shard in held {
                guard case .records(let records) = try await toc.collection("c").runLocal(
                    .scroll(offset: nil, limit: 1000, filter: nil, withPayload: .none, withVector: .none), shards: [shard]) else {
                    Issue.record("expected records")
                    continue
                }
                #expect(!records.isEmpty)
                #expect(records.allSatisfy { PointRouting.shardIndex(of: $0.id, shardCount: 6) == Int(shard) })
            }
        }

        // A peer that does not answer: a read needing its only replicas fails as unavailable; one
        // whose shards are all held here still works.
        network.setDown(2)
        await #expect(throws: StorageError.unavailable("no replica of shards [1, 3, 5] of collection `c` answered: peer 2 is down")) {
            try await one.count()
        }
        let onShardZero = points.map(\.id).first { PointRouting.shardIndex(of: $0, shardCount: 6) == 0 }!
        #expect(try await one.retrieve([onShardZero], withPayload: .all, withVector: .none).map(\.id) == [onShardZero])
    }
}

extension ShardingTests {
    @Test func keysProposedFromTheSameViewGetDistinctShardIDs() throws {
        var state = ClusterMetadata()
        let custom = try request(#"{"vectors":{"size":2,"distance":"Dot"},"sharding_method":"custom"}"#).effectiveConfig(defaults: CollectionDefaults())
        _ = state.apply(.createCollection(name: "c", config: custom, shards: []))
        let first = ShardPlacement.place(count: 2, replicas: 1, peers: [1, 2], firstID: 0, key: .string("a"), existing: [])
        let second = ShardPlacement.place(count: 2, replicas: 1, peers: [1, 2], firstID: 0, key: .string("b"), existing: [])
        #expect(try state.apply(.createShardKey(collection: "c", shards: first)).get())
        #expect(try state.apply(.createShardKey(collection: "c", shards: second)).get())
        #expect(state.shards["c"]!.map(\.id) == [0, 1, 2, 3])
        #expect(state.shards["c"]!.map(\.key) == [.string("a"), .string("a"), .string("b"), .string("b")])
    }
}
