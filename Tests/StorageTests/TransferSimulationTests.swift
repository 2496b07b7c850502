import Foundation
import QuiverJSON
import QuiverModel
import Shard
@testable import Storage
import Testing
import VectorIndex

/// A seeded simulation of `stream_records` shard transfers: three peers in one process, two
/// replicated shards, and random steps that interleave writes (upserts, deletes and payload updates
/// of several points, through random peers, with random ordering, some calls lost on the way or
/// their answers lost), a peer falling behind consensus for a while (writes through it follow its
/// old view of the replicas), transfers started into peers
/// without a replica (moves and replications, a third of them by snapshot) or into `Dead` replicas
/// (recoveries, by WAL delta, which falls back to streaming when the WAL cannot tell what the
/// replica lacks, by streaming or by snapshot), and one batch
/// of a running transfer at a time (three records per batch, so a transfer spans many writes). A
/// transfer whose batches or forwarded updates fail is aborted; one that sends its last batch is
/// finished once every peer has caught up (as the source waits for every peer before it proposes
/// the end). Checked after every step, against the ledger of acknowledged writes: every `Active`
/// replica, those that transfers made `Active` included, holds every point as its last
/// acknowledged write left it. `QUIVER_SIM_SEED` and `QUIVER_SIM_STEPS` as in the replication
/// simulation.
@Suite struct TransferSimulationTests {
    @Test(arguments: ReplicationSimulationTests.seeds) func transfersUnderWritesAndLostMessagesKeepEveryAcknowledgedWrite(seed: UInt64) async throws {
        var rng = SplitMix(seed: seed ^ 0x7472_616e_7366_6572)
        let cluster = try await InProcessCluster(peers: [1, 2, 3], shards: [ShardInfo(id: 0, peers: [1, 2]), ShardInfo(id: 1, peers: [2, 3])])
        let catalogue = SimulatedConsensus(cluster.catalogue, cluster.tocs)
        await catalogue.bind()
        var ledger: [PointID: Int?] = Dictionary(uniqueKeysWithValues: ReplicationSimulationTests.ids.map { ($0, Int?.none) })
        var clocks: [String: UInt64] = [:]
        var running: (relay: TransferRelay, source: Collection, started: Bool, offset: PointID?)?
        var acknowledged = 0, started = 0, completed = 0, aborted = 0, deltas = 0, fallbacks = 0, snapshots = 0, lags = 0

        for step in 0..<ReplicationSimulationTests.steps {
            if running?.relay.isCancelled == true { running = nil }  // a replica of it turned Dead
            let roll = rng.next() % 100
            switch roll {
            case 0..<60:
                if try await ReplicationSimulationTests.lossyWrite(cluster, seed: seed, step: step, &rng, &ledger) { acknowledged += 1 }
            case 60..<66:
                if await catalogue.lagOrCatchUp(&rng) { lags += 1 }
            default:
                if let current = running {
                    let transfer = current.relay.transfer
                    do {
                        if transfer.method == .snapshot {
                            // The whole snapshot and the updates queued since in one step. The
                            // target's clocks become the snapshot's, which may be older (as in Qdrant).
                            clocks = clocks.filter { !$0.key.hasPrefix("replica \(transfer.to) of shard \(transfer.shard),") }
                            try await current.source.snapshotTransfer(current.relay, scratch: await cluster.tocs[transfer.from]!.nextTempPath("transfer"))
                            try await Self.end(transfer, recovered: true, catalogue)
                            running = nil
                            completed += 1
                            snapshots += 1
                        } else if transfer.method == .walDelta {
                            // The whole delta in one step; the target then recovers and ends.
                            if try await current.source.walDelta(current.relay) != nil {
                                await current.source.endOutgoing(current.relay)
                                #expect(try await catalogue.apply(.restartTransfer(collection: "c", transfer: transfer.key, method: .streamRecords,
                                                                                   started: transfer.started), by: transfer.from).get())
                                let restarted = catalogue.state.transfers["c"]!.first { $0.key == transfer.key }!
                                running = (try await current.source.beginOutgoing(restarted), current.source, false, nil)
                                fallbacks += 1
                            } else {
                                try await Self.end(transfer, recovered: true, catalogue)
                                running = nil
                                completed += 1
                                deltas += 1
                            }
                        } else if !current.started {
                            try await current.source.startStream(current.relay)
                            running!.started = true
                        } else if let next = try await current.source.streamBatch(current.relay, from: current.offset, limit: 3) {
                            running!.offset = next
                        } else {
                            try await current.source.check(current.relay)
                            try await Self.end(transfer, recovered: false, catalogue)
                            running = nil
                            completed += 1
                        }
                    } catch {
                        // Lost messages fail a transfer; a point the target does not have yet never does.
                        if case StorageError.notFound = error { Issue.record("seed \(seed) step \(step): a transfer failed for a missing point: \(error)") }
                        await current.source.endOutgoing(current.relay)
                        await catalogue.apply(.abortTransfer(collection: "c", transfer: transfer.key, reason: "\(error)"), by: transfer.from)
                        running = nil
                        aborted += 1
                    }
                } else if let transfer = Self.pick(catalogue.state, &rng) {
                    guard case .success = await catalogue.apply(.startTransfer(collection: "c", transfer: transfer), by: transfer.from) else { break }
                    // A lagging target takes the start a moment later (the source waits for it).
                    if catalogue.laggingPeer == transfer.to { await catalogue.catchUp() }
                    let source = try await cluster.collection(transfer.from)
                    started += 1
                    // A failure report that a lost reply left in flight can mark a replica of the
                    // new transfer `Dead` before its source registers it, which aborts it.
                    guard let begun = catalogue.state.transfers["c"]?.first(where: { $0.key == transfer.key }) else {
                        aborted += 1
                        break
                    }
                    do {
                        running = (try await source.beginOutgoing(begun), source, false, nil)
                    } catch {
                        #expect(!(catalogue.state.transfers["c"] ?? []).contains { $0.key == transfer.key },
                                "seed \(seed) step \(step): the transfer could not begin: \(error)")
                        aborted += 1
                    }
                }
            }
            try await ReplicationSimulationTests().checkReplicas(cluster, catalogue.state, ledger, &clocks, seed: seed, step: step)
        }
        let states = catalogue.state.shards["c"]!.map { shard in "shard \(shard.id): " + shard.peers.map { "\($0) \(shard.state(of: $0).rawValue)" }.joined(separator: ", ") }
        print("seed \(seed): \(acknowledged) writes acknowledged; \(started) transfers started, \(completed) completed (\(deltas) by WAL delta, \(fallbacks) fell back to streaming, \(snapshots) by snapshot), \(aborted) aborted; \(lags) peers lagged; \(states.joined(separator: "; "))")
        #expect(completed > 0, "seed \(seed): no transfer completed")
        for shard in catalogue.state.shards["c"]! {
            #expect(shard.peers.contains { shard.state(of: $0) == .active }, "seed \(seed): shard \(shard.id) lost its last active replica")
        }
    }

    /// The end of a transfer whose data is on the target, as its source proposes it: the
    /// target's recovery when it was in `Recovery`, then (once every peer has caught up, so none
    /// still sends writes past the target) the end.
    /// A failure report that a lost reply left in flight can mark a replica of the transfer
    /// `Dead` while the step runs, which aborts the transfer: then the proposal fails, and the
    /// error goes to the caller, which counts the transfer as aborted. Any other failure is an issue.
    static func end(_ transfer: ShardTransfer, recovered: Bool, _ catalogue: SimulatedConsensus) async throws {
        func propose(_ operation: MetadataOperation) async throws {
            switch await catalogue.apply(operation, by: transfer.from) {
            case .success(let applied):
                #expect(applied)
            case .failure(let error):
                #expect(!(catalogue.state.transfers["c"] ?? []).contains { $0.key == transfer.key }, "the transfer could not end: \(error)")
                throw error
            }
        }
        if recovered { try await propose(.transferRecovered(collection: "c", transfer: transfer.key, started: transfer.started)) }
        await catalogue.catchUp()
        try await propose(.finishTransfer(collection: "c", transfer: transfer.key, started: transfer.started))
    }

    /// A transfer to start: into a `Dead` replica from an active one (a recovery), or to a peer
    /// without a replica (a replication, or a move when the shard has two replicas or fewer).
    static func pick(_ state: ClusterMetadata, _ rng: inout SplitMix) -> ShardTransfer? {
        let shards = state.shards["c"]!
        let shard = shards[Int(rng.next() % UInt64(shards.count))]
        let sources = shard.peers.filter { shard.state(of: $0) == .active }
        guard !sources.isEmpty else { return nil }
        let source = sources[Int(rng.next() % UInt64(sources.count))]
        if let dead = shard.peers.first(where: { shard.state(of: $0) == .dead }) {
            let methods: [ShardTransferMethod] = [.walDelta, .streamRecords, .snapshot]
            return ShardTransfer(shard: shard.id, from: source, to: dead, sync: true, method: methods[Int(rng.next() % 3)])
        }
        guard let target = ([1, 2, 3] as [UInt64]).first(where: { !shard.peers.contains($0) }) else { return nil }
        return ShardTransfer(shard: shard.id, from: source, to: target, sync: shard.peers.count < 2 || rng.next() % 2 == 0,
                             method: rng.next() % 3 == 0 ? .snapshot : .streamRecords)
    }
}
