import Foundation
import QuiverJSON
import QuiverModel
import Storage
import Testing

/// Resharding in the catalogue and in routing: jump consistent routing moves only the points of
/// the added (or removed) last shard, the stages change in order with Qdrant's checks, and writes
/// and reads reach the shards each stage says.
@Suite struct ReshardingTests {
    func config(_ body: String = #"{"vectors":{"size":2,"distance":"Dot"},"shard_number":3}"#) throws -> CollectionConfig {
        try request(body).effectiveConfig(defaults: CollectionDefaults())
    }

    func catalogue(ring: PointRing? = .jump) throws -> ClusterMetadata {
        var state = ClusterMetadata()
        let shards = (0..<3).map { ShardInfo(id: UInt32($0), peers: [UInt64($0 + 1)]) }
        _ = state.apply(.createCollection(name: "c", config: try config(), shards: shards, routing: ring.map { ShardRouting(ring: $0) }))
        return state
    }

    @Test func jumpRoutingMovesOnlyThePointsOfTheLastShard() {
        let ids = (0..<20_000).map { PointID.number(UInt64($0)) } + (0..<2_000).map { PointID.uuid(UInt64($0) &* 0x9e37_79b9_7f4a_7c15, 42) }
        for n in 1..<8 {
            var counts = [Int](repeating: 0, count: n + 1)
            for id in ids {
                let before = PointRouting.shardIndex(of: id, shardCount: n, ring: .jump)
                let after = PointRouting.shardIndex(of: id, shardCount: n + 1, ring: .jump)
                #expect(after == before || after == n)
                counts[after] += 1
            }
            // Even within 10% of the mean.
            let mean = Double(ids.count) / Double(n + 1)
            #expect(counts.allSatisfy { abs(Double($0) - mean) < mean * 0.1 }, "\(counts)")
        }
        // The documented values (README, tests/integration/test_sharding.py).
        #expect((0..<8).map { PointRouting.shardIndex(of: .number(UInt64($0)), shardCount: 6, ring: .jump) } == [0, 3, 0, 1, 1, 4, 3, 4])
        #expect(PointRouting.shardIndex(of: .uuid(0x550e_8400_e29b_41d4, 0xa716_4466_5544_0000), shardCount: 6, ring: .jump) == 2)
        #expect(PointRouting.shardIndex(of: .number(7), shardCount: 1, ring: .jump) == 0)
        // The owner condition says the same as routing.
        for id in ids.prefix(500) {
            let index = PointRouting.shardIndex(of: id, shardCount: 5, ring: .jump)
            #expect(Filter(must: [.owner(index: UInt32(index), count: 5, ring: .jump)]).matches(id: id, payload: nil, hasVector: { _ in false }))
            #expect(!Filter(must: [.owner(index: UInt32((index + 1) % 5), count: 5, ring: .jump)]).matches(id: id, payload: nil, hasVector: { _ in false }))
        }
    }

    @Test func aScaleUpGoesThroughItsStagesInOrder() throws {
        var state = try catalogue()
        let up = Resharding(direction: .up, shard: 3, peer: 2, key: nil)
        let added = ShardInfo(id: 3, peers: [2], states: [2: .resharding])
        #expect(state.apply(.startResharding(collection: "c", resharding: up, added: added)) == .success(true))
        #expect(state.shards["c"]!.last == added && state.routing["c"]!.resharding == up)
        #expect(state.apply(.startResharding(collection: "c", resharding: up, added: added))
                == .failure(.badRequest("resharding up of shard 3 is already in progress for collection c")))
        // Stages one after another; reads move on only once every copy is made.
        #expect(state.apply(.reshardingStage(collection: "c", stage: .readCommitted))
                == .failure(.badRequest("expected resharding stage migrating to move to read_committed, but resharding is at stage preparing")))
        #expect(state.apply(.reshardingStage(collection: "c", stage: .migrating)) == .success(true))
        #expect(up.copies(state.shards["c"]!).map { [$0.from, $0.to] } == [[0, 3], [1, 3], [2, 3]])
        #expect(state.apply(.reshardingStage(collection: "c", stage: .readCommitted))
                == .failure(.badRequest("resharding of collection c has not copied shard 0 into shard 3 on peer 2 yet")))
        for copy in up.copies(state.shards["c"]!) {
            let transfer = up.transfer(copy, from: UInt64(copy.from + 1), layout: state.shards["c"]!, ring: .jump)!
            #expect(transfer.filter == Filter(must: [.owner(index: 3, count: 4, ring: .jump)]) && transfer.targetShard == 3)
            #expect(state.apply(.startTransfer(collection: "c", transfer: transfer)) == .success(true))
            // Into another shard: the target replica keeps its state.
            #expect(state.shards["c"]![3].state(of: 2) == .resharding)
            #expect(state.apply(.finishTransfer(collection: "c", transfer: transfer.key)) == .success(true))
        }
        #expect(state.routing["c"]!.resharding!.copied.count == 3)
        #expect(state.apply(.reshardingStage(collection: "c", stage: .readCommitted)) == .success(true))
        #expect(state.shards["c"]![3].state(of: 2) == .active)
        #expect(state.apply(.abortResharding(collection: "c"))
                == .failure(.badRequest("can't abort resharding 2/3/nil, because read hash ring has been committed already, resharding must be completed")))
        #expect(state.apply(.finishResharding(collection: "c"))
                == .failure(.badRequest("resharding of collection c cannot finish at stage read_committed")))
        #expect(state.apply(.reshardingStage(collection: "c", stage: .writeCommitted)) == .success(true))
        #expect(state.apply(.reshardingStage(collection: "c", stage: .cleaned)) == .success(true))
        #expect(state.apply(.finishResharding(collection: "c")) == .success(true))
        #expect(state.routing["c"] == ShardRouting(ring: .jump) && state.collections["c"]!.params.shardNumber == 4)
        #expect(state.shards["c"]!.map(\.id) == [0, 1, 2, 3])
        // Kept across encoding.
        let decoded = try JSONValueDecoder().decode(ClusterMetadata.self, from: try JSONValueEncoder().encodeBytes(state))
        #expect(decoded == state)
    }

    @Test func aScaleDownAbortedWhileMigratingCleansUpBeforeItEnds() throws {
        var state = try catalogue()
        let down = Resharding(direction: .down, shard: 2, peer: 3, key: nil)
        #expect(state.apply(.startResharding(collection: "c", resharding: Resharding(direction: .down, shard: 1, peer: 2, key: nil), added: nil))
                == .failure(.badRequest("shard 1 is not the last shard of the group")))
        #expect(state.apply(.startResharding(collection: "c", resharding: down, added: nil)) == .success(true))
        #expect(state.shards["c"]!.map { $0.state(of: UInt64($0.id + 1)) } == [.reshardingScaleDown, .reshardingScaleDown, .active])
        #expect(state.apply(.reshardingStage(collection: "c", stage: .migrating)) == .success(true))
        #expect(down.copies(state.shards["c"]!).map { [$0.from, $0.to] } == [[2, 0], [2, 1]])
        let copy = down.transfer(down.copies(state.shards["c"]!)[0], from: 3, layout: state.shards["c"]!, ring: .jump)!
        #expect(copy.filter == Filter(must: [.owner(index: 0, count: 2, ring: .jump)]))
        #expect(state.apply(.startTransfer(collection: "c", transfer: copy)) == .success(true))
        // Another transfer from or into the same replicas waits for it.
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 1, to: 2, sync: true, method: .streamRecords)))
                == .failure(.badRequest("Shard 2 is already involved in transfer 3 -> 1")))
        #expect(state.apply(.finishTransfer(collection: "c", transfer: copy.key)) == .success(true))
        // A new replica of a receiving shard needs its own copy; a replica that starts over from
        // another one has lost its copy.
        let replicate = ShardTransfer(shard: 0, from: 1, to: 2, sync: true, method: .streamRecords)
        #expect(state.apply(.startTransfer(collection: "c", transfer: replicate)) == .success(true))
        #expect(state.apply(.finishTransfer(collection: "c", transfer: replicate.key)) == .success(true))
        #expect(Set(Set(down.copies(state.shards["c"]!)).subtracting(state.routing["c"]!.resharding!.copied).map { [$0.to, UInt32($0.peer)] })
                == [[0, 2], [1, 2]])
        #expect(state.apply(.setReplicaState(collection: "c", shard: 0, peer: 1, state: .dead, from: .reshardingScaleDown)) == .success(true))
        #expect(state.apply(.startTransfer(collection: "c", transfer: ShardTransfer(shard: 0, from: 2, to: 1, sync: true, method: .streamRecords)))
                == .success(true))
        #expect(state.routing["c"]!.resharding!.copied.isEmpty)
        #expect(state.apply(.startTransfer(collection: "c", transfer: down.transfer(down.copies(state.shards["c"]!)[0], from: 3,
                                                                                     layout: state.shards["c"]!, ring: .jump)!))
                == .failure(.badRequest("Shard 0 is already involved in transfer 2 -> 1")))
        // An abort ends the copies only.
        #expect(state.apply(.abortResharding(collection: "c")) == .success(true))
        #expect(state.transfers["c"]!.map(\.method) == [.streamRecords] && state.routing["c"]!.resharding!.stage == .aborting)
        #expect(state.apply(.finishResharding(collection: "c"))
                == .failure(.badRequest("resharding of collection c cannot finish at stage aborting")))
        // The clean-up waits for a stream into a replica of the group to end.
        #expect(state.apply(.reshardingStage(collection: "c", stage: .aborted))
                == .failure(.badRequest("resharding of collection c waits for the transfer of shard 0 from 2 to 1 to end")))
        #expect(state.apply(.finishTransfer(collection: "c", transfer: .init(shard: 0, from: 2, to: 1))) == .success(true))
        #expect(state.apply(.reshardingStage(collection: "c", stage: .aborted)) == .success(true))
        #expect(state.apply(.finishResharding(collection: "c")) == .success(true))
        #expect(state.shards["c"]!.map(\.id) == [0, 1, 2] && state.collections["c"]!.params.shardNumber == 3)
        #expect(state.routing["c"] == ShardRouting(ring: .jump) && state.shards["c"]![1] == ShardInfo(id: 1, peers: [2]))
        state = try catalogue()

        // Done: the removed shard leaves at the end.
        #expect(state.apply(.startResharding(collection: "c", resharding: down, added: nil)) == .success(true))
        for stage in [Resharding.Stage.migrating, .readCommitted] {
            let applied = state.apply(.reshardingStage(collection: "c", stage: stage))
            if stage == .readCommitted { #expect(applied != .success(true)) } else { #expect(applied == .success(true)) }
        }
        for transfer in down.copies(state.shards["c"]!).map({ down.transfer($0, from: 3, layout: state.shards["c"]!, ring: .jump)! }) {
            #expect(state.apply(.startTransfer(collection: "c", transfer: transfer)) == .success(true))
            #expect(state.apply(.finishTransfer(collection: "c", transfer: transfer.key)) == .success(true))
        }
        for stage in [Resharding.Stage.readCommitted, .writeCommitted, .cleaned] {
            #expect(state.apply(.reshardingStage(collection: "c", stage: stage)) == .success(true))
        }
        #expect(state.apply(.finishResharding(collection: "c")) == .success(true))
        #expect(state.shards["c"]! == [ShardInfo(id: 0, peers: [1]), ShardInfo(id: 1, peers: [2])] && state.collections["c"]!.params.shardNumber == 2)
    }

    @Test func reshardingIsRefusedWhereItCannotWork() throws {
        var legacy = try catalogue(ring: nil)
        let up = Resharding(direction: .up, shard: 3, peer: 2, key: nil)
        let added = ShardInfo(id: 3, peers: [2], states: [2: .resharding])
        guard case .failure(.badRequest(let message)) = legacy.apply(.startResharding(collection: "c", resharding: up, added: added)) else {
            Issue.record("a collection routed by modulo was resharded")
            return
        }
        #expect(message.contains("routes points by modulo"))
        var state = try catalogue()
        #expect(state.apply(.startResharding(collection: "c", resharding: Resharding(direction: .up, shard: 3, peer: 2, key: .string("eu")),
                                             added: ShardInfo(id: 3, key: .string("eu"), peers: [2])))
                == .failure(.badRequest("cannot specify shard key \"eu\" on collection with auto sharding")))
        #expect(state.apply(.startResharding(collection: "c", resharding: Resharding(direction: .up, shard: 2, peer: 2, key: nil),
                                             added: ShardInfo(id: 2, peers: [2])))
                == .failure(.badRequest("the new shard 2 of collection c is already taken; try again")))
        #expect(state.apply(.abortResharding(collection: "c")) == .failure(.badRequest("resharding is not in progress for collection c")))
        // An aborted scale-up takes its shard away at once.
        #expect(state.apply(.startResharding(collection: "c", resharding: up, added: added)) == .success(true))
        #expect(state.apply(.abortResharding(collection: "c")) == .success(true))
        #expect(state.shards["c"]!.map(\.id) == [0, 1, 2] && state.routing["c"] == ShardRouting(ring: .jump))
    }

    @Test func writesAndReadsReachTheShardsEachStageSays() throws {
        let layout = (0..<4).map { ShardInfo(id: UInt32($0), peers: [1]) }
        func holder(_ stage: Resharding.Stage, _ direction: ReshardingDirection = .up) -> ShardHolder {
            ShardHolder(layout, sharding: .auto, routing: ShardRouting(ring: .jump, resharding: Resharding(direction: direction, shard: 3, peer: 1, key: nil, stage: stage)))
        }
        let ids = (0..<400).map { PointID.number(UInt64($0)) }
        let moving = ids.filter { PointRouting.shardIndex(of: $0, shardCount: 4, ring: .jump) == 3 }
        #expect(!moving.isEmpty)
        let upsert = UpdateOperation.upsert(ids.map { PointStruct(id: $0, vectors: ["": [1, 0]]) })
        func written(_ holder: ShardHolder) -> [UInt32: Set<PointID>] {
            holder.split(upsert, byFilter: false, over: try! holder.scope(nil, write: true)).mapValues { Set($0.ids) }
        }
        // Up: the new shard gets nothing while preparing, a copy of its points while migrating and
        // reading from it, and the only copy from writeCommitted on.
        #expect(written(holder(.preparing))[3] == nil)
        #expect(written(holder(.migrating))[3] == Set(moving))
        #expect(written(holder(.migrating)).values.map(\.count).reduce(0, +) == ids.count + moving.count)
        #expect(written(holder(.writeCommitted)).values.map(\.count).reduce(0, +) == ids.count)
        #expect(written(holder(.writeCommitted))[3] == Set(moving))
        // Reads: the old three shards until readCommitted, then all four, each owning its points.
        #expect(try holder(.migrating).scope(nil, write: false) == [Array(layout.prefix(3))])
        #expect(try holder(.readCommitted).scope(nil, write: false) == [layout])
        #expect(holder(.migrating).readRestrictions()[0] == .owner(index: 0, count: 3, ring: .jump))
        #expect(holder(.readCommitted).readRestrictions()[3] == .owner(index: 3, count: 4, ring: .jump))
        // Down: the removed shard is read until readCommitted and written until writeCommitted.
        #expect(try holder(.migrating, .down).scope(nil, write: false) == [layout])
        #expect(try holder(.readCommitted, .down).scope(nil, write: false) == [Array(layout.prefix(3))])
        #expect(written(holder(.readCommitted, .down))[3] == Set(moving))
        #expect(written(holder(.writeCommitted, .down))[3] == nil)
        for stage in [Resharding.Stage.aborting, .aborted] {
            #expect(written(holder(stage, .down)).values.map(\.count).reduce(0, +) == ids.count)
            #expect(written(holder(stage, .down))[3] == Set(moving))
            #expect(try holder(stage, .down).scope(nil, write: false) == [layout])
        }
        #expect(ShardHolder(layout, sharding: .auto, routing: ShardRouting(ring: .jump)).readRestrictions().isEmpty)
    }
}
