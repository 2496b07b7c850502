import Foundation
import QuiverJSON
import QuiverModel
import Shard
@testable import Storage
import Testing
import VectorIndex

/// A seeded simulation of resharding: three peers in one process, a collection of two shards with
/// two replicas each (jump routing), and random steps that interleave writes (upserts, deletes and
/// payload updates through random peers, with random ordering, some calls or answers lost), a
/// peer falling behind consensus for a while, and the steps of reshardings up and down as the
/// leader drives them: the start, each copy's start, batches (three records each, so a copy spans
/// many writes) and end, each stage once every peer has caught up, aborts while migrating, and
/// the end; `Dead` replicas are recovered meanwhile by whole streams from `Active` ones. A copy
/// whose batches or forwarded updates fail is aborted and made again.
///
/// Checked after every step, through every peer that is not behind: a scroll of the whole
/// collection lists each point once, holding what its last acknowledged write left, and an exact
/// count says as many. After each resharding ends: every `Active` replica holds exactly the
/// points its shard owns under the new count. `QUIVER_SIM_SEED` and `QUIVER_SIM_STEPS` as in the
/// replication simulation.
@Suite struct ReshardingSimulationTests {
    struct Copying {
        var relay: TransferRelay
        var source: Collection
        var started = false
        var offset: PointID?
    }

    @Test(arguments: ReplicationSimulationTests.seeds) func reshardingUnderWritesAndLostMessagesKeepsEveryPointOnce(seed: UInt64) async throws {
        var rng = SplitMix(seed: seed ^ 0x7265_7368_6172_6420)
        let cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2]), ShardInfo(id: 1, peers: [2, 3])],
                                                 ring: .jump)
        let catalogue = SimulatedConsensus(cluster.catalogue, cluster.tocs)
        await catalogue.bind()
        var ledger: [PointID: Int?] = Dictionary(uniqueKeysWithValues: ReplicationSimulationTests.ids.map { ($0, Int?.none) })
        var copying: Copying?
        var acknowledged = 0, reshardings = 0, finished = 0, aborted = 0, copies = 0, failedCopies = 0, lags = 0, recoveries = 0

        for step in 0..<ReplicationSimulationTests.steps {
            if copying?.relay.isCancelled == true { copying = nil }
            let state = catalogue.state
            let resharding = state.routing["c"]?.resharding
            let roll = rng.next() % 100
            switch roll {
            case 0..<55:
                if try await ReplicationSimulationTests.lossyWrite(cluster, seed: seed, step: step, &rng, &ledger) { acknowledged += 1 }
            case 55..<61:
                if await catalogue.lagOrCatchUp(&rng) { lags += 1 }
            case 61..<66:
                // A Dead replica is brought back by a whole stream from an Active one (a copy it
                // had received is then made again).
                guard copying == nil, let (shard, dead) = state.shards["c"]!.lazy.compactMap({ shard in
                    shard.peers.first { shard.state(of: $0) == .dead }.map { (shard, $0) } }).first,
                      let from = shard.peers.first(where: { shard.state(of: $0).isActive }) else { break }
                let transfer = ShardTransfer(shard: shard.id, from: from, to: dead, sync: true, method: .streamRecords)
                guard case .success = await catalogue.apply(.startTransfer(collection: "c", transfer: transfer), by: from) else { break }
                await catalogue.catchUp()
                let source = try await cluster.collection(from)
                let relay = try await source.beginOutgoing(catalogue.state.transfers["c"]!.first { $0.key == transfer.key }!)
                do {
                    try await source.startStream(relay)
                    var offset: PointID?
                    repeat { offset = try await source.streamBatch(relay, from: offset, limit: 1000) } while offset != nil
                    try await source.check(relay)
                    #expect(try await catalogue.apply(.finishTransfer(collection: "c", transfer: transfer.key), by: from).get())
                    recoveries += 1
                } catch {
                    await source.endOutgoing(relay)
                    await catalogue.apply(.abortTransfer(collection: "c", transfer: transfer.key, reason: "\(error)"), by: from)
                }
            default:
                guard let resharding else {
                    guard let start = Self.start(state, &rng) else { break }
                    if case .success = await catalogue.apply(.startResharding(collection: "c", resharding: start.resharding, added: start.added),
                                                             by: 1 + rng.next() % 3) {
                        reshardings += 1
                    }
                    break
                }
                let leader = 1 + rng.next() % 3
                if let current = copying {
                    let transfer = current.relay.transfer
                    do {
                        if !current.started {
                            try await current.source.startStream(current.relay)
                            copying!.started = true
                        } else if let next = try await current.source.streamBatch(current.relay, from: current.offset, limit: 3) {
                            copying!.offset = next
                        } else {
                            try await current.source.check(current.relay)
                            await catalogue.catchUp()
                            #expect(try await catalogue.apply(.finishTransfer(collection: "c", transfer: transfer.key, started: transfer.started),
                                                              by: transfer.from).get())
                            copying = nil
                            copies += 1
                        }
                    } catch {
                        if case StorageError.notFound = error { Issue.record("seed \(seed) step \(step): a copy failed for a missing point: \(error)") }
                        await current.source.endOutgoing(current.relay)
                        await catalogue.apply(.abortTransfer(collection: "c", transfer: transfer.key, reason: "\(error)"), by: transfer.from)
                        copying = nil
                        failedCopies += 1
                    }
                    break
                }
                switch resharding.stage {
                case .preparing, .readCommitted, .writeCommitted, .cleaned, .aborting, .aborted:
                    // The leader waits for every peer before the next stage.
                    await catalogue.catchUp()
                    let next: [Resharding.Stage: Resharding.Stage] = [.preparing: .migrating, .readCommitted: .writeCommitted, .writeCommitted: .cleaned,
                                                                      .aborting: .aborted]
                    if let stage = next[resharding.stage] {
                        #expect(try await catalogue.apply(.reshardingStage(collection: "c", stage: stage), by: leader).get())
                    } else {
                        #expect(try await catalogue.apply(.finishResharding(collection: "c"), by: leader).get())
                        if resharding.stage == .cleaned { finished += 1 }
                        try await checkOwnership(cluster, catalogue.state, ledger, seed: seed, step: step)
                    }
                case .migrating:
                    let layout = state.shards["c"]!
                    let newShard = layout.first { $0.id == resharding.shard }
                    let lost = resharding.direction == .up ? newShard.map { s in s.peers.contains { s.state(of: $0) == .dead } } ?? true
                                                           : newShard.map { s in !s.peers.contains { s.state(of: $0).isActive } } ?? true
                    if lost || rng.next() % 20 == 0 {
                        #expect(try await catalogue.apply(.abortResharding(collection: "c"), by: leader).get())
                        aborted += 1
                        break
                    }
                    guard let copy = resharding.copies(layout).first(where: { !resharding.copied.contains($0) }) else {
                        await catalogue.catchUp()
                        #expect(try await catalogue.apply(.reshardingStage(collection: "c", stage: .readCommitted), by: leader).get())
                        break
                    }
                    let source = layout.first { $0.id == copy.from }!
                    guard let from = source.peers.filter({ source.state(of: $0).isActive }).sorted().first,
                          let transfer = resharding.transfer(copy, from: from, layout: layout, ring: .jump),
                          case .success = await catalogue.apply(.startTransfer(collection: "c", transfer: transfer), by: leader) else { break }
                    if catalogue.laggingPeer == transfer.to || catalogue.laggingPeer == transfer.from { await catalogue.catchUp() }
                    let begun = catalogue.state.transfers["c"]!.first { $0.key == transfer.key }!
                    let collection = try await cluster.collection(from)
                    copying = Copying(relay: try await collection.beginOutgoing(begun), source: collection)
                }
            }
            try await checkReads(cluster, catalogue, ledger, seed: seed, step: step)
        }
        let layout = catalogue.state.shards["c"]!.map { shard in "shard \(shard.id): " + shard.peers.map { "\($0) \(shard.state(of: $0).rawValue)" }.joined(separator: ", ") }
        print("seed \(seed): \(acknowledged) writes acknowledged; \(reshardings) reshardings started, \(finished) finished, \(aborted) aborted; \(copies) copies made, \(failedCopies) failed; \(recoveries) replicas recovered; \(lags) peers lagged; \(layout.joined(separator: "; "))")
        #expect(finished > 0 || ReplicationSimulationTests.steps < 100, "seed \(seed): no resharding finished")
    }

    /// A resharding to start: up to at most five shards, down to at least one.
    static func start(_ state: ClusterMetadata, _ rng: inout SplitMix) -> (resharding: Resharding, added: ShardInfo?)? {
        let layout = state.shards["c"]!
        if layout.count < 5 && (layout.count == 1 || rng.next() % 2 == 0) {
            let id = layout.map(\.id).max()! + 1, peer = 1 + rng.next() % 3
            return (Resharding(direction: .up, shard: id, peer: peer, key: nil), ShardInfo(id: id, peers: [peer], states: [peer: .resharding]))
        }
        let last = layout.last!
        guard let peer = last.peers.first(where: { last.state(of: $0).isActive }) else { return nil }
        return (Resharding(direction: .down, shard: last.id, peer: peer, key: nil), nil)
    }

    /// Through every peer that is not behind: each point once, as the ledger says, and an exact
    /// count of as many.
    func checkReads(_ cluster: InProcessCluster, _ catalogue: SimulatedConsensus, _ ledger: [PointID: Int?],
                    seed: UInt64, step: Int) async throws {
        // Once the replicas that failed a write are `Dead` everywhere (a write waits only when
        // its failure was transient; until then a peer may read its own replica that missed the
        // write, as in any cluster; one that cannot turn `Dead` failed its write).
        for _ in 0..<50 {
            var pending = false
            for peer in [UInt64(1), 2, 3] where peer != catalogue.laggingPeer {
                let disabled = await (try cluster.collection(peer)).disabled
                let layout = catalogue.state.shards["c"] ?? []
                for (shard, peers) in disabled {
                    guard let info = layout.first(where: { $0.id == shard }) else { continue }
                    let others = info.peers.filter { info.state(of: $0).isActive }
                    if peers.keys.contains(where: { info.state(of: $0) != .dead && info.peers.contains($0) && others.count > 1 }) { pending = true }
                }
            }
            if !pending { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        await catalogue.reportsSettled()
        for peer in [UInt64(1), 2, 3] where peer != catalogue.laggingPeer {
            let collection = try await cluster.collection(peer)
            let (records, _) = try await collection.scroll(from: nil, limit: 1000, withPayload: .all, withVector: .none)
            let ids = records.map(\.id)
            #expect(Set(ids).count == ids.count, "seed \(seed) step \(step): peer \(peer) lists a point twice: \(ids)")
            let held = ReplicationSimulationTests.values(records)
            for (id, expected) in ledger {
                #expect(held[id] == expected, "seed \(seed) step \(step): point \(id) read through peer \(peer)")
            }
            #expect(try await collection.count() == records.count, "seed \(seed) step \(step): peer \(peer) counts otherwise")
        }
    }

    /// Every `Active` replica holds exactly the points (of the ledger) its shard owns.
    func checkOwnership(_ cluster: InProcessCluster, _ state: ClusterMetadata, _ ledger: [PointID: Int?], seed: UInt64, step: Int) async throws {
        let layout = state.shards["c"]!.sorted { $0.id < $1.id }
        for (index, shard) in layout.enumerated() {
            for peer in shard.peers where shard.state(of: peer) == .active {
                let held = ReplicationSimulationTests.values(try await cluster.held(peer, shard: shard.id))
                for id in held.keys {
                    #expect(PointRouting.shardIndex(of: id, shardCount: layout.count, ring: .jump) == index,
                            "seed \(seed) step \(step): point \(id) left on replica \(peer) of shard \(shard.id)")
                }
                for (id, expected) in ledger where PointRouting.shardIndex(of: id, shardCount: layout.count, ring: .jump) == index {
                    #expect(held[id] == expected, "seed \(seed) step \(step): point \(id) on Active replica \(peer) of shard \(shard.id)")
                }
            }
        }
    }
}
