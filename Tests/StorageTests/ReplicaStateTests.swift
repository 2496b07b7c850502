import Foundation
import QuiverJSON
import QuiverModel
import Storage
import Testing

/// Replica states in the catalogue: changed only by a consensus operation with Qdrant's checks,
/// kept across encoding, and obeyed by routing (a replica that takes no updates gets none, one
/// that serves no reads is not asked).
@Suite struct ReplicaStateTests {
    func catalogue() throws -> ClusterMetadata {
        var state = ClusterMetadata()
        let config = try request(#"{"vectors":{"size":2,"distance":"Dot"}}"#).effectiveConfig(defaults: CollectionDefaults())
        _ = state.apply(.createCollection(name: "c", config: config, shards: [ShardInfo(id: 0, peers: [1, 2]), ShardInfo(id: 1, peers: [2])]))
        return state
    }

    @Test func stateChangesAreCheckedAsQdrantChecksThem() throws {
        var state = try catalogue()
        #expect(state.shards["c"]![0].state(of: 2) == .active)
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .dead, from: .active)) == .success(true))
        #expect(state.shards["c"]![0].state(of: 2) == .dead)
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .active, from: .partial))
                == .failure(.badInput("Replica 2 of shard 0 has state Dead, but expected Partial")))
        // The last active replica cannot be deactivated; another state change of it is fine.
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 1, state: .dead, from: nil))
                == .failure(.badInput("Cannot deactivate the last active replica 1 of shard 0")))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 1, peer: 2, state: .partial, from: nil))
                == .failure(.badInput("Cannot deactivate the last active replica 2 of shard 1")))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 3, state: .dead, from: nil))
                == .failure(.badInput("Replica 3 of shard 0 of collection `c` does not exist")))
        #expect(state.apply(.setReplicaState(collection: "nope", shard: 0, peer: 1, state: .dead, from: nil)) == .failure(.notFound("Collection `nope` doesn't exist!")))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .active, from: .dead)) == .success(true))
        #expect(state.shards["c"]![0] == ShardInfo(id: 0, peers: [1, 2]))
    }

    @Test func replicasAreAddedRemovedAndTakenOutForARecovery() throws {
        var state = try catalogue()
        // A snapshot recovery may take the last active replica out of service, and only it.
        #expect(state.apply(.setReplicaState(collection: "c", shard: 1, peer: 2, state: .manualRecovery, from: .active)) == .success(true))
        #expect(state.shards["c"]![1].state(of: 2) == .manualRecovery)
        #expect(state.apply(.addReplica(collection: "c", shard: 1, peer: 3, state: .manualRecovery)) == .success(true))
        #expect(state.shards["c"]![1] == ShardInfo(id: 1, peers: [2, 3], states: [2: .manualRecovery, 3: .manualRecovery]))
        #expect(state.apply(.addReplica(collection: "c", shard: 1, peer: 3, state: .active))
                == .failure(.badRequest("Peer 3 already has a replica of shard 1")))
        #expect(state.apply(.addReplica(collection: "c", shard: 7, peer: 3, state: .active))
                == .failure(.notFound("Shard 7 of collection `c` does not exist")))
        // A replica leaves only when an active one stays.
        #expect(state.apply(.removeReplica(collection: "c", shard: 0, peer: 2)) == .success(true))
        #expect(state.apply(.removeReplica(collection: "c", shard: 0, peer: 1))
                == .failure(.badRequest("Shard 0 must have at least one active replica after removing 1")))
        #expect(state.apply(.removeReplica(collection: "c", shard: 1, peer: 2))
                == .failure(.badRequest("Shard 1 must have at least one active replica after removing 2")))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 1, peer: 3, state: .active, from: nil)) == .success(true))
        #expect(state.apply(.removeReplica(collection: "c", shard: 1, peer: 2)) == .success(true))
        #expect(state.shards["c"]! == [ShardInfo(id: 0, peers: [1]), ShardInfo(id: 1, peers: [3])])
        #expect(state.apply(.removeReplica(collection: "c", shard: 1, peer: 9))
                == .failure(.notFound("Replica 9 of shard 1 of collection `c` does not exist")))
    }

    @Test func transfersMoveReplicasThroughTheirStates() throws {
        var state = try catalogue()
        let replicate = ShardTransfer(shard: 0, from: 1, to: 3, sync: true, method: .streamRecords)
        #expect(state.apply(.startTransfer(collection: "c", transfer: replicate)) == .success(true))
        #expect(state.shards["c"]![0] == ShardInfo(id: 0, peers: [1, 2, 3], states: [3: .partial]))
        // One transfer per shard and peer; the source must be active; no transfer to itself.
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 2, to: 3, sync: true, method: .walDelta)))
                == .failure(.badRequest("Shard 0 is already involved in transfer 1 -> 3")))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 1, from: 3, to: 1, sync: false, method: .snapshot)))
                == .failure(.badRequest("Shard 1 is not active on peer 3")))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 1, from: 2, to: 2, sync: false, method: .snapshot)))
                == .failure(.badRequest("Cannot transfer shard 1 from peer 2 to itself")))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 9, from: 2, to: 1, sync: false, method: .snapshot)))
                == .failure(.badRequest("Shard 9 does not exist")))
        // A target is absent or Dead: a replica that is whole, or in another change, is no target.
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 1, to: 2, sync: true, method: .streamRecords)))
                == .failure(.badRequest("Shard 0 is already involved in transfer 1 -> 3")))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 1, from: 2, to: 3, sync: true, method: .streamRecords)))
                == .success(true))
        #expect(state.apply(.abortTransfer(collection: "c", transfer: .init(shard: 1, from: 2, to: 3), reason: "test")) == .success(true))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 1, peer: 3, state: .partial, from: .dead)) == .success(true))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 1, from: 2, to: 3, sync: true, method: .streamRecords)))
                == .failure(.badRequest("Shard 1 cannot be transferred to peer 3: its replica there is Partial")))
        #expect(state.apply(.removeReplica(collection: "c", shard: 1, peer: 3)) == .success(true))
        // The end names the transfer by its start: an earlier transfer's end does not end a later one.
        let started = state.transfers["c"]![0].started
        #expect(state.apply(.finishTransfer(collection: "c", transfer: replicate.key, started: started + 1))
                == .failure(.badRequest("There is no transfer for shard 0 from 1 to 3")))
        #expect(state.apply(.finishTransfer(collection: "c", transfer: replicate.key, started: started)) == .success(true))
        #expect(state.shards["c"]![0] == ShardInfo(id: 0, peers: [1, 2, 3]) && state.transfers["c"] == nil)
        #expect(state.apply(.finishTransfer(collection: "c", transfer: replicate.key))
                == .failure(.badRequest("There is no transfer for shard 0 from 1 to 3")))

        // A move: the target is Recovery until recovered, then Partial; the source leaves at the end.
        let move = ShardTransfer(shard: 1, from: 2, to: 1, sync: false, method: .snapshot)
        #expect(state.apply(.startTransfer(collection: "c", transfer: move)) == .success(true))
        #expect(state.shards["c"]![1].state(of: 1) == .recovery)
        #expect(state.apply(.finishTransfer(collection: "c", transfer: move.key))
                == .failure(.badRequest("Replica 1 of shard 1 of collection `c` is not in Partial state")))
        #expect(state.apply(.transferRecovered(collection: "c", transfer: move.key)) == .success(true))
        #expect(state.shards["c"]![1].state(of: 1) == .partial)
        #expect(state.apply(.restartTransfer(collection: "c", transfer: move.key, method: .snapshot))
                == .failure(.badRequest("Cannot restart transfer for shard 1 from 2 to 1, its configuration did not change")))
        #expect(state.apply(.restartTransfer(collection: "c", transfer: move.key, method: .streamRecords)) == .success(true))
        #expect(state.transfers["c"] == [ShardTransfer(shard: 1, from: 2, to: 1, sync: false, method: .streamRecords)])
        #expect(state.apply(.finishTransfer(collection: "c", transfer: move.key)) == .success(true))
        #expect(state.shards["c"]![1] == ShardInfo(id: 1, peers: [1]))

        // Aborting: a replication's target turns Dead, a move's target leaves; a Dead source or
        // target ends its transfers; so does the removal of its peer.
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 1, from: 1, to: 2, sync: true, method: .streamRecords))) == .success(true))
        #expect(state.apply(.abortTransfer(collection: "c", transfer: .init(shard: 1, from: 1, to: 2), reason: "test")) == .success(true))
        #expect(state.shards["c"]![1] == ShardInfo(id: 1, peers: [1, 2], states: [2: .dead]) && state.transfers["c"] == nil)
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 3, to: 4, sync: false, method: .streamRecords))) == .success(true))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 3, state: .dead, from: nil)) == .success(true))
        #expect(state.shards["c"]![0] == ShardInfo(id: 0, peers: [1, 2, 3], states: [3: .dead]) && state.transfers["c"] == nil)
        // A replica whose data a snapshot replaces ends its transfers too.
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 2, to: 3, sync: true, method: .streamRecords))) == .success(true))
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .manualRecovery, from: nil)) == .success(true))
        #expect(state.transfers["c"] == nil && state.shards["c"]![0].state(of: 3) == .dead)
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .active, from: nil)) == .success(true))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 1, to: 3, sync: true, method: .streamRecords))) == .success(true))
        #expect(state.apply(.removePeerReplicas(peer: 1)) == .success(true))
        #expect(state.shards["c"]![0] == ShardInfo(id: 0, peers: [2, 3], states: [3: .dead]) && state.transfers["c"] == nil)
        let encoded = try JSONValueEncoder().encodeBytes(state)
        #expect(try JSONValueDecoder().decode(ClusterMetadata.self, from: encoded) == state)
    }

    @Test func peersActivateTheirNewReplicasAndListenersStepBack() throws {
        var state = ClusterMetadata()
        let config = try request(#"{"vectors":{"size":2,"distance":"Dot"}}"#).effectiveConfig(defaults: CollectionDefaults())
        let shards = [ShardInfo(id: 0, peers: [1, 2]), ShardInfo(id: 1, peers: [2])].initializing
        _ = state.apply(.createCollection(name: "c", config: config, shards: shards))
        #expect(state.ownReplicaChanges(peer: 2, listener: false) == [
            .setReplicaState(collection: "c", shard: 0, peer: 2, state: .active, from: .initializing),
            .setReplicaState(collection: "c", shard: 1, peer: 2, state: .active, from: .initializing),
        ])
        for change in state.ownReplicaChanges(peer: 2, listener: true) + state.ownReplicaChanges(peer: 1, listener: false) {
            #expect(state.apply(change) == .success(true))
        }
        // Peer 2 is a Listener node: its replica of shard 0 (which has another active one) steps
        // back; its only replica of shard 1 stays Active.
        #expect(state.ownReplicaChanges(peer: 2, listener: true) == [
            .setReplicaState(collection: "c", shard: 0, peer: 2, state: .listener, from: .active),
        ])
        _ = state.apply(state.ownReplicaChanges(peer: 2, listener: true)[0])
        #expect(state.shards["c"]![0].state(of: 2) == .listener && state.shards["c"]![1].state(of: 2) == .active)
        #expect(state.ownReplicaChanges(peer: 2, listener: true).isEmpty)
        // Restarted as a normal node, it becomes Active again.
        #expect(state.ownReplicaChanges(peer: 2, listener: false) == [
            .setReplicaState(collection: "c", shard: 0, peer: 2, state: .active, from: .listener),
        ])
        // A peer removed for good leaves every shard.
        _ = state.apply(.removePeerReplicas(peer: 2))
        #expect(state.shards["c"]!.map(\.peers) == [[1], []])
    }

    @Test func drainingPeersAreRecordedUntilTheyLeave() throws {
        var state = try catalogue()
        #expect(state.apply(.drainPeer(peer: 2, draining: true)) == .success(true))
        #expect(state.apply(.drainPeer(peer: 3, draining: true)) == .success(true))
        #expect(state.drainingPeers == [2, 3])
        #expect(state.apply(.drainPeer(peer: 3, draining: false)) == .success(true))
        let encoded = try JSONValueEncoder().encodeBytes(state)
        #expect(try JSONValueDecoder().decode(ClusterMetadata.self, from: encoded).drainingPeers == [2])
        // Removing the peer ends its draining; a catalogue written before draining existed reads as none.
        _ = state.apply(.removePeerReplicas(peer: 2))
        #expect(state.drainingPeers.isEmpty)
        let text = String(decoding: encoded, as: UTF8.self)
        let old = text.replacingOccurrences(of: #","draining_peers":[2]"#, with: "").replacingOccurrences(of: #""draining_peers":[2],"#, with: "")
        #expect(old != text)
        #expect(try JSONValueDecoder().decode(ClusterMetadata.self, from: Array(old.utf8)).drainingPeers.isEmpty)
    }

    @Test func statesSurviveEncodingAndOldCataloguesReadAsActive() throws {
        let info = ShardInfo(id: 3, peers: [1, 2, 3], states: [2: .dead, 3: .listener, 1: .active])
        let bytes = try JSONValueEncoder().encodeBytes(info)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"id":3,"peers":[1,2,3],"states":{"2":"Dead","3":"Listener"}}"#)
        #expect(try JSONValueDecoder().decode(ShardInfo.self, from: bytes) == info)
        let old = try JSONValueDecoder().decode(ShardInfo.self, from: Array(#"{"id":0,"peers":[4]}"#.utf8))
        #expect(old.state(of: 4) == .active && old == ShardInfo(id: 0, peers: [4]))
        let operation = MetadataOperation.setReplicaState(collection: "c", shard: 0, peer: 2, state: .dead, from: .active)
        #expect(try JSONValueDecoder().decode(MetadataOperation.self, from: JSONValueEncoder().encodeBytes(operation)) == operation)
    }
}

extension ShardingTests {
    @Test func aDeadReplicaGetsNoUpdatesAndServesNoReads() async throws {
        let (first, second, network, storages, catalogue) = try await twoPeersWithCatalogue()
        _ = storages
        let one = try await first.collection("c")
        let two = try await second.collection("c")
        let onShardZero = (0..<2000).map { PointID.number(UInt64($0)) }.filter { PointRouting.shardIndex(of: $0, shardCount: 6) == 0 }
        let points = onShardZero.prefix(20).map { PointStruct(id: $0, vectors: ["": [1, 1]]) }
        _ = try await one.update(PointsUpdate(.upsert(Array(points.prefix(10)))), wait: true)

        var state = catalogue
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 2, state: .dead, from: .active)) == .success(true))
        for toc in [first, second] { try await toc.reconcile(with: state) }
        #expect(await two.clusterInfo().localShards.first { $0.shardID == 0 }?.state == .dead)
        #expect(await one.clusterInfo().remoteShards.first { $0.shardID == 0 }?.state == .dead)

        // Writes skip the dead replica; its own peer refuses a write sent to it directly.
        network.resetCounts()
        _ = try await one.update(PointsUpdate(.upsert(Array(points.suffix(10)))), wait: true)
        #expect(network.updates[2] == nil)
        await #expect(throws: StorageError.unavailable("Replica of shard 0 on peer 2 takes no updates in state Dead")) {
            _ = try await two.applyLocal([0: .upsert([points[0]])], filter: nil, wait: true)
        }
        // The refusal says so apart from any failure, so the sender does not hold it against the
        // request or the point (it is behind on the catalogue, not the replica).
        let refused = try await two.applyLocal([0: .upsert([points[0]])], clocks: [:], filter: nil, wait: true)
        #expect(refused.refused == [0])
        guard case .count(let held) = try await two.runLocal(.count(filter: nil), shards: [0]) else {
            Issue.record("expected a count")
            return
        }
        #expect(held == 10)
        // Reads through peer 2 take shard 0 from peer 1, which has all 20.
        network.resetCounts()
        #expect(try await two.retrieve(Array(onShardZero.prefix(20)), withPayload: .none, withVector: .none).count == 20)
        #expect(network.reads[1] == 1)
    }
}

/// Consensus reduced to its effect: a report applies `Dead` to the catalogue, and every peer
/// reconciles with it.
final class CatalogueReporter: ReplicaFailureReporter, @unchecked Sendable {
    let lock = NSLock()
    var state: ClusterMetadata
    let tocs: [TableOfContent]
    var reports: [(UInt32, UInt64, ReplicaState?)] = []

    init(_ state: ClusterMetadata, _ tocs: [TableOfContent]) {
        self.state = state
        self.tocs = tocs
    }

    func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?) async {
        let snapshot: ClusterMetadata = lock.withLock {
            reports.append((shard, peer, from))
            _ = state.apply(.setReplicaState(collection: collection, shard: shard, peer: peer, state: .dead, from: from))
            return state
        }
        for toc in tocs { try? await toc.reconcile(with: snapshot) }
    }
}

extension ShardingTests {
    @Test func aReplicaThatFailsAWriteIsDisabledAndMarkedDeadAndTheWriteSucceeds() async throws {
        let (first, second, network, storages, catalogue) = try await twoPeersWithCatalogue()
        _ = storages
        let reporter = CatalogueReporter(catalogue, [first, second])
        await first.reportReplicaFailures(to: reporter)
        let one = try await first.collection("c")
        let ids = (0..<3000).map { PointID.number(UInt64($0)) }
        let onShardZero = ids.filter { PointRouting.shardIndex(of: $0, shardCount: 6) == 0 }
        let onShardOne = ids.filter { PointRouting.shardIndex(of: $0, shardCount: 6) == 1 }

        network.setDown(2)
        // Shard 0 has a live replica here: the write succeeds once peer 2's replica is marked Dead.
        let result = try await one.update(PointsUpdate(.upsert(onShardZero.prefix(5).map { PointStruct(id: $0, vectors: ["": [1, 1]]) })), wait: true)
        #expect(result.status == .completed)
        #expect(reporter.lock.withLock { reporter.reports.map { "\($0.0)@\($0.1)" } } == ["0@2"])
        #expect(reporter.lock.withLock { reporter.reports.first?.2 } == .active)
        #expect(await one.clusterInfo().remoteShards.first { $0.shardID == 0 && $0.peerID == 2 }?.state == .dead)
        // Later writes go to the live replica only, without another report.
        network.resetCounts()
        _ = try await one.update(PointsUpdate(.upsert(onShardZero.suffix(5).map { PointStruct(id: $0, vectors: ["": [1, 1]]) })), wait: true)
        #expect(network.updates[2] == nil && reporter.lock.withLock { reporter.reports.count } == 1)
        #expect(try await one.retrieve(Array(onShardZero.prefix(5) + onShardZero.suffix(5)), withPayload: .none, withVector: .none).count == 10)
        // Shard 1 has its only replica on peer 2: its writes fail, and the last replica is not disabled.
        await #expect(throws: StorageError.self) {
            _ = try await one.update(PointsUpdate(.upsert([PointStruct(id: onShardOne[0], vectors: ["": [1, 1]])])), wait: true)
        }
        #expect(reporter.lock.withLock { reporter.reports.count } == 1)
    }
}

extension ShardingTests {
    @Test func readConsistencyAsksEnoughReplicasAndKeepsWhatTheyAgreeOn() async throws {
        let (first, second, network, storages) = try await twoPeers()
        _ = storages
        let one = try await first.collection("c")
        let two = try await second.collection("c")
        let onShardZero = (0..<3000).map { PointID.number(UInt64($0)) }.filter { PointRouting.shardIndex(of: $0, shardCount: 6) == 0 }
        _ = try await one.update(PointsUpdate(.upsert(onShardZero.prefix(10).map { PointStruct(id: $0, vectors: ["": [1, 1]]) })), wait: true)
        // Shard 0's replicas diverge: one point only on peer 1's replica.
        let extra = onShardZero[10]
        _ = try await one.applyLocal([0: .upsert([PointStruct(id: extra, vectors: ["": [2, 2]])])], filter: nil, wait: true)
        let zeroOnly = Filter(must: [.hasID(Set([extra] + onShardZero.prefix(10)))])

        #expect(try await two.count(filter: zeroOnly) == 10)                         // its own replica
        #expect(try await one.count(filter: zeroOnly) == 11)
        #expect(try await two.count(filter: zeroOnly, consistency: .all) == 10)      // the smallest
        #expect(try await two.count(filter: zeroOnly, consistency: .majority) == 11) // the median of two
        #expect(try await one.retrieve([extra], withPayload: .none, withVector: .none).count == 1)
        for consistency in [ReadConsistency.all, .majority, .quorum, .factor(2)] {
            #expect(try await one.retrieve([extra], withPayload: .none, withVector: .none, consistency: consistency).isEmpty, "\(consistency)")
            let (page, _) = try await one.scroll(from: nil, limit: 100, filter: zeroOnly, withPayload: .none, withVector: .none, consistency: consistency)
            #expect(page.count == 10, "\(consistency)")
        }
        var query = SearchRequest()
        query.query = .vector([2, 2])
        query.limit = 20
        query.filter = zeroOnly
        query.params.exact = true
        #expect(try await one.search(query).count == 11)
        #expect(try await one.search(query, consistency: .all).map(\.id).contains(extra) == false)
        // Every shard is read, replicated or not: the whole collection still counts.
        #expect(try await two.count(consistency: .all) == 10)

        // Too few replicas answering is an error naming the failures.
        network.setDown(1)
        let ids = Array(onShardZero.prefix(10))
        await #expect(throws: StorageError.self) { _ = try await two.retrieve(ids, withPayload: .none, withVector: .none, consistency: .all) }
        #expect(try await two.retrieve(ids, withPayload: .none, withVector: .none).count == 10)
    }
}
