import Foundation
import QuiverJSON
import QuiverModel
import Shard
@testable import Storage
import Synchronization
import Testing
import VectorIndex

/// A seeded simulation of replication: three peers in one process, two replicated shards, and a
/// few hundred random steps — writes with random ordering through random peers, calls lost on the
/// way or their answers lost after the replica applied them, peers down for a while, peers
/// persisting and restarting from their storage, old updates delivered again — against a ledger
/// of acknowledged writes. The steps run one after another and every fault is a function of
/// (seed, step, target peer, the call's shards and clock tags), so a seed replays the same run
/// (for a bit-exact replay, also with `SWIFT_DETERMINISTIC_HASHING=1`: the order in which one
/// write's calls start follows dictionary order). `QUIVER_SIM_SEED=a,b,…` picks other seeds,
/// `QUIVER_SIM_STEPS` the length.
///
/// Checked after every step and at the end:
/// - every replica still `Active` holds every point as its last acknowledged write left it (a write
///   that failed may have reached some replicas, as in Qdrant, so its points are not checked until
///   an acknowledged write sets them again);
/// - reads through any live peer return the same;
/// - no replica's newest clock tick ever goes back, across restarts too.
@Suite struct ReplicationSimulationTests {
    static let seeds: [UInt64] = ProcessInfo.processInfo.environment["QUIVER_SIM_SEED"]
        .map { $0.split(separator: ",").compactMap { UInt64($0) } } ?? [1, 2, 3]
    static let steps = ProcessInfo.processInfo.environment["QUIVER_SIM_STEPS"].flatMap { Int($0) } ?? 150
    static let ids = (0..<40).map { PointID.number(UInt64($0)) }

    @Test(arguments: seeds) func acknowledgedWritesSurviveLostMessagesOutagesAndRestarts(seed: UInt64) async throws {
        var rng = SplitMix(seed: seed)
        var cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2, 3]), ShardInfo(id: 1, peers: [1, 2])])
        let catalogue = SimulatedConsensus(cluster.catalogue, cluster.tocs)
        for toc in cluster.tocs.values { await toc.reportReplicaFailures(to: catalogue) }
        /// id → payload value of its last acknowledged write (nil: deleted); absent: unknown, as
        /// the last write to it failed.
        var ledger: [PointID: Int?] = Dictionary(uniqueKeysWithValues: Self.ids.map { ($0, Int?.none) })
        var clocks: [String: UInt64] = [:]
        var down: UInt64?
        var acknowledged = 0, refused = 0, redelivered = 0

        for step in 0..<Self.steps {
            cluster.network.injectUpdateFaults { peer, call in
                switch SplitMix.hash(seed, UInt64(step), peer, call) % 100 {
                case 0..<6: .drop
                case 6..<10: .loseReply
                default: nil
                }
            }
            let roll = rng.next() % 100
            let live: [UInt64] = [1, 2, 3].filter { $0 != down }
            switch roll {
            case 0..<70:
                if try await Self.randomWrite(cluster, through: live, step: step, &rng, &ledger) {
                    acknowledged += 1
                } else {
                    refused += 1
                }
            case 70..<80:
                let peer = live[Int(rng.next() % UInt64(live.count))]
                try await cluster.restart(peer, catalogue: catalogue.state)
                await cluster.tocs[peer]!.reportReplicaFailures(to: catalogue)
                catalogue.replace(cluster.tocs)
            case 80..<88:
                if let peer = down {
                    cluster.network.setDown(peer, false)
                    down = nil
                } else {
                    down = UInt64(1 + rng.next() % 3)
                    cluster.network.setDown(down!)
                }
            case 88..<93:
                // Segments and clocks to disk, so restarts also start from them rather than the WAL alone.
                let peer = live[Int(rng.next() % UInt64(live.count))]
                try await cluster.tocs[peer]!.flushAll(force: true)
            default:
                // An update a replica applied arrives there again after newer ones from its sender's
                // clock (a duplicate from the network): it must change nothing.
                var candidates: [InProcessNetwork.DeliveredUpdate] = []
                for call in cluster.network.delivered where call.peer != down && !call.clocks.isEmpty {
                    let collection = try await cluster.collection(call.peer)
                    var superseded = true
                    for (shard, tag) in call.clocks {
                        let newest = await collection.shards[shard]?.newestClocks.tick(of: tag.peerID, clock: tag.clockID) ?? 0
                        superseded = superseded && tag.tick < newest
                    }
                    if superseded { candidates.append(call) }
                }
                guard !candidates.isEmpty else { break }
                let call = candidates[Int(rng.next() % UInt64(candidates.count))]
                let ack = try await cluster.collection(call.peer).applyLocal(call.operations, clocks: call.clocks, filter: nil, wait: true)
                for shard in call.operations.keys {
                    #expect(ack.rejected[shard] != nil || ack.failed[shard] != nil,
                            "seed \(seed) step \(step): a duplicate of an old update was applied again by peer \(call.peer)")
                }
                redelivered += 1
            }
            cluster.network.injectUpdateFaults(nil)
            try await checkReplicas(cluster, catalogue.state, ledger, &clocks, seed: seed, step: step)
        }
        if let peer = down { cluster.network.setDown(peer, false) }
        try await checkReplicas(cluster, catalogue.state, ledger, &clocks, seed: seed, step: Self.steps)
        // Reads through every peer agree with the ledger.
        for peer: UInt64 in [1, 2, 3] {
            let found = Self.values(try await cluster.collection(peer).retrieve(Self.ids, withPayload: .all, withVector: .none))
            for (id, expected) in ledger {
                #expect(found[id] == expected, "seed \(seed): point \(id) read through peer \(peer)")
            }
        }
        let states = catalogue.state.shards["c"]!.map { shard in "shard \(shard.id): " + shard.peers.map { "\($0) \(shard.state(of: $0).rawValue)" }.joined(separator: ", ") }
        print("seed \(seed): \(acknowledged) writes acknowledged, \(refused) refused, \(redelivered) duplicates refused; \(states.joined(separator: "; "))")
        #expect(acknowledged > Self.steps / 10, "seed \(seed): too few writes went through for the run to say much")
    }

    /// Upserts (payload `v` = `step`) or deletes 1–4 random points through a random peer of `peers`
    /// with a random ordering, or with `payloadUpdates` sometimes sets `v` = `step` on them (which
    /// fails unless they all exist), and records the outcome in `ledger`: the points' new state
    /// when the write is acknowledged, unknown when it fails. Returns whether it was acknowledged.
    static func randomWrite(_ cluster: InProcessCluster, through peers: [UInt64], step: Int, _ rng: inout SplitMix,
                            _ ledger: inout [PointID: Int?], payloadUpdates: Bool = false) async throws -> Bool {
        let entry = peers[Int(rng.next() % UInt64(peers.count))]
        let chosen = Array(Set((0..<(1 + rng.next() % 4)).map { _ in ids[Int(rng.next() % UInt64(ids.count))] })).sorted()
        let ordering = WriteOrdering.allCases[Int(rng.next() % 3)]
        let kind = rng.next() % (payloadUpdates ? 7 : 5)
        let upsert = kind != 0
        let operation: UpdateOperation = switch kind {
        case 0: .delete(chosen)
        case 5, 6: .setPayload(chosen, payload: JSONObject([("v", .int(Int64(step)))]), key: nil)
        default: .upsert(chosen.map { PointStruct(id: $0, vectors: ["": [1, 1]], payload: JSONObject([("v", .int(Int64(step)))])) })
        }
        do {
            _ = try await cluster.collection(entry).update(PointsUpdate(operation), wait: true, ordering: ordering)
            for id in chosen { ledger[id] = .some(upsert ? step : nil) }
            return true
        } catch {
            for id in chosen { ledger.removeValue(forKey: id) }
            return false
        }
    }

    /// A ``randomWrite(_:through:step:_:_:payloadUpdates:)`` through any of peers 1–3, with
    /// payload updates, while 3% of the calls to replicas are lost on the way and 2% after they
    /// applied (the same calls for the same seed and step).
    static func lossyWrite(_ cluster: InProcessCluster, seed: UInt64, step: Int, _ rng: inout SplitMix,
                           _ ledger: inout [PointID: Int?]) async throws -> Bool {
        cluster.network.injectUpdateFaults { peer, call in
            switch SplitMix.hash(seed, UInt64(step), peer, call) % 100 {
            case 0..<3: .drop
            case 3..<5: .loseReply
            default: nil
            }
        }
        defer { cluster.network.injectUpdateFaults(nil) }
        return try await randomWrite(cluster, through: [1, 2, 3], step: step, &rng, &ledger, payloadUpdates: true)
    }

    /// Point → its payload's `v` (-1 when it has none); absent points are absent.
    static func values(_ records: [PointRecord]) -> [PointID: Int] {
        Dictionary(uniqueKeysWithValues: records.map { record in
            if case .int(let v)? = record.payload?["v"] { (record.id, Int(v)) } else { (record.id, -1) }
        })
    }

    /// Every `Active` replica against the ledger; every replica's clocks against the last check.
    func checkReplicas(_ cluster: InProcessCluster, _ state: ClusterMetadata, _ ledger: [PointID: Int?],
                       _ clocks: inout [String: UInt64], seed: UInt64, step: Int) async throws {
        for shard in state.shards["c"]! {
            for peer in shard.peers {
                let collection = try await cluster.collection(peer)
                guard let local = await collection.shards[shard.id] else { continue }
                for (key, entry) in await local.newestClocks.clocks {
                    let name = "replica \(peer) of shard \(shard.id), clock \(key.clockID) of peer \(key.peerID)"
                    #expect(entry.tick >= clocks[name] ?? 0, "seed \(seed) step \(step): \(name) went back")
                    clocks[name] = entry.tick
                }
                guard shard.state(of: peer) == .active else { continue }
                let held = Self.values(try await cluster.held(peer, shard: shard.id))
                for (id, expected) in ledger where PointRouting.shardIndex(of: id, shardCount: 2) == Int(shard.id) {
                    #expect(held[id] == expected, "seed \(seed) step \(step): point \(id) on Active replica \(peer) of shard \(shard.id)")
                }
            }
        }
    }
}

/// Consensus reduced to its effect, for the simulation: a report marks the replica `Dead` in one
/// catalogue (with the checks every peer would apply) and every current peer reconciles with it,
/// except a peer set to lag, which keeps its view until it catches up (when it proposes a change
/// itself, or ``catchUp()``).
final class SimulatedConsensus: ReplicaFailureReporter, @unchecked Sendable {
    private let lock = NSLock()
    private var catalogue: ClusterMetadata
    private var tocs: [UInt64: TableOfContent]
    private var lagging: UInt64?
    /// Failure reports being applied (their `Dead` states reaching the peers).
    private var reporting = 0

    init(_ catalogue: ClusterMetadata, _ tocs: [UInt64: TableOfContent]) {
        self.catalogue = catalogue
        self.tocs = tocs
    }

    var state: ClusterMetadata { lock.withLock { catalogue } }
    var laggingPeer: UInt64? { lock.withLock { lagging } }

    func replace(_ tocs: [UInt64: TableOfContent]) { lock.withLock { self.tocs = tocs } }

    /// Binds each peer's failure reports to this consensus, as proposals of that peer.
    func bind() async {
        for (peer, toc) in lock.withLock({ tocs }) { await toc.reportReplicaFailures(to: Reporter(consensus: self, peer: peer)) }
    }

    /// From now on `peer` applies no change until it catches up.
    func lag(_ peer: UInt64) { lock.withLock { lagging = peer } }

    /// A random peer falls behind (writes through it use its old view of the replicas; returns
    /// true), or the one behind catches up.
    func lagOrCatchUp(_ rng: inout SplitMix) async -> Bool {
        if laggingPeer != nil {
            await catchUp()
            return false
        }
        lag(UInt64(1 + rng.next() % 3))
        return true
    }

    /// The lagging peer applies every change so far.
    func catchUp() async {
        let (snapshot, toc) = lock.withLock { () -> (ClusterMetadata, TableOfContent?) in
            defer { lagging = nil }
            return (catalogue, lagging.flatMap { tocs[$0] })
        }
        try? await toc?.reconcile(with: snapshot)
    }

    /// Applies `operation` to the catalogue and every peer reconciles with it; `proposer` (which
    /// waits until it has applied its own change) catches up if it lags.
    @discardableResult
    func apply(_ operation: MetadataOperation, by proposer: UInt64? = nil) async -> Result<Bool, StorageError> {
        let result = lock.withLock { () -> Result<Bool, StorageError> in
            catalogue.appliedIndex += 1
            return catalogue.apply(operation)
        }
        await reconcile(proposer: proposer)
        return result
    }

    func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?) async {
        await replicaFailed(collection: collection, shard: shard, peer: peer, from: from, by: nil)
    }

    func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?, by proposer: UInt64?) async {
        _ = lock.withLock {
            reporting += 1
            return catalogue.apply(.setReplicaState(collection: collection, shard: shard, peer: peer, state: .dead, from: from))
        }
        await reconcile(proposer: proposer)
        lock.withLock { reporting -= 1 }
    }

    /// Waits until every failure report applied so far has reached every peer that is not behind
    /// (a write waits only until its own peer has seen the replica it failed on turn `Dead`).
    func reportsSettled() async {
        while lock.withLock({ reporting }) > 0 { try? await Task.sleep(for: .milliseconds(1)) }
    }

    private func reconcile(proposer: UInt64?) async {
        let (snapshot, peers) = lock.withLock { () -> (ClusterMetadata, [TableOfContent]) in
            if lagging == proposer { lagging = nil }
            return (catalogue, tocs.filter { $0.key != lagging }.map(\.value))
        }
        for toc in peers { try? await toc.reconcile(with: snapshot) }
    }

    private final class Reporter: ReplicaFailureReporter {
        let consensus: SimulatedConsensus
        let peer: UInt64

        init(consensus: SimulatedConsensus, peer: UInt64) {
            self.consensus = consensus
            self.peer = peer
        }

        func replicaFailed(collection: String, shard: UInt32, peer failed: UInt64, from: ReplicaState?) async {
            await consensus.replicaFailed(collection: collection, shard: shard, peer: failed, from: from, by: peer)
        }
    }
}

extension SplitMix {
    /// A hash of several numbers through the generator: the same inputs, the same value.
    static func hash(_ values: UInt64...) -> UInt64 {
        var mix = SplitMix(seed: 0)
        for value in values { mix = SplitMix(seed: mix.next() ^ value) }
        return mix.next()
    }
}
