import DiskIO
public import QuiverModel
import Shard
import Synchronization

/// The source side of a running transfer of one local shard (Qdrant's forward proxy): once
/// forwarding, every update this peer applies to the shard is sent on to the target, in the order
/// applied here, and batches of the shard's records are read and sent under the same lock, so the
/// last thing the target receives about a point is what the source holds.
public final class TransferRelay: Sendable {
    public let transfer: ShardTransfer
    /// Held while an update is applied to the shard and forwarded, and while a batch is read and sent.
    let lock = OrderingLock()
    private let state = Mutex<State>(State())

    struct State {
        var forwarding = false
        var cancelled = false
        var failure: StorageError?
        var stage = "proxifying"
        var done = 0
        var total = 0
        var started = ContinuousClock.now
    }

    init(_ transfer: ShardTransfer) { self.transfer = transfer }

    /// Forwarding until the transfer ends or a forward fails (the transfer is then aborted).
    var isForwarding: Bool { state.withLock { $0.forwarding && !$0.cancelled && $0.failure == nil } }
    var isCancelled: Bool { state.withLock { $0.cancelled } }
    /// Why forwarding failed, if it did: the transfer cannot complete.
    var failure: StorageError? { state.withLock { $0.failure } }

    func startForwarding() { state.withLock { $0.forwarding = true } }
    func cancel() { state.withLock { $0.cancelled = true } }
    func fail(_ error: StorageError) { state.withLock { if $0.failure == nil { $0.failure = error } } }

    func stage(_ name: String) {
        state.withLock {
            $0.stage = name
            $0.started = .now
        }
    }

    /// Records sent so far.
    var sent: Int { state.withLock { $0.done } }

    func progress(done: Int, total: Int) {
        state.withLock {
            $0.done = done
            $0.total = max(total, done)
        }
    }

    /// The progress as Qdrant words it: the stage and its time, then the records sent of the
    /// total and the time left.
    public var comment: String {
        state.withLock { state in
            let elapsed = (ContinuousClock.now - state.started) / .seconds(1)
            var parts = ["\(state.stage) (\(Self.seconds(elapsed)))"]
            if state.total > 0 {
                var records = "Transferring records (\(state.done)/\(state.total))"
                if state.done > 0 && state.done < state.total {
                    records += ", ETA: \(Self.seconds(elapsed * Double(state.total - state.done) / Double(state.done)))"
                }
                parts.append(records)
            }
            return parts.joined(separator: " | ")
        }
    }

    private static func seconds(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)s"
    }
}

extension Collection {
    /// Records per batch of a `stream_records` transfer.
    static let transferBatch = 256

    /// Takes the catalogue's transfers of this collection. Runs before the layout of the same
    /// catalogue change is applied, so a target whose stream starts over is emptied while its
    /// replica still refuses updates: a new `stream_records` transfer into a shard held here (a
    /// `Dead` replica coming back) starts from an empty shard, since the stream brings every point
    /// the source has and nothing would remove the ones it no longer has. The relays of transfers
    /// that ended stop forwarding.
    func applyTransfers(_ updated: [ShardTransfer]) async throws(StorageError) {
        let known = Set(transfers)
        for transfer in updated where !known.contains(transfer) && isLocal(transfer.to) && transfer.method == .streamRecords && !transfer.isCrossShard {
            if shards[transfer.shard] != nil { try await emptyShard(transfer.shard) }
        }
        transfers = updated.sorted { ($0.shard, $0.from, $0.to) < ($1.shard, $1.from, $1.to) }
        let running = Set(updated)
        // Not under the relay's lock: this runs on consensus's thread, which must not wait for a
        // forward to a target that may not answer. An update that took the lock before still
        // forwards; the driver waits for it before it reads the relay's outcome.
        for (id, relay) in outgoing where !running.contains(relay.transfer) {
            outgoing[id] = nil
            relay.cancel()
        }
    }

    /// Puts the snapshot files in `directory` in place of this peer's replica, the target of the
    /// `snapshot` transfer `transfer`, if the transfer still runs (and the replica is still in
    /// `Recovery`) once the old shard is closed. The replica's recovery point is then the
    /// snapshot's clocks: until it is active, updates it takes do not count.
    func replaceTransferTarget(_ transfer: ShardTransfer, with directory: String) async throws(StorageError) {
        let id = transfer.shard
        try await replaceShard(id, with: directory) {
            transfers.contains(transfer) && layout.first { $0.id == id }?.state(of: peerID) == .recovery
        }
        guard let shard = shards[id] else { return }
        do {
            try await shard.freezeRecoveryPoint()
        } catch {
            throw .serviceError("cannot record the recovery point of shard \(id) of collection `\(name)`: \(error)")
        }
    }

    /// Replaces local shard `id` with an empty one. (An optimization of the old shard still
    /// running may write its segment under the new shard's directory; it cannot swap it in, and
    /// removes it, or the next start does, as it lists in no `segments.json`.)
    private func emptyShard(_ id: UInt32) async throws(StorageError) {
        guard let old = shards.removeValue(forKey: id) else { return }
        await old.close(waiting: false)
        let target = joinPath(path, String(id))
        let discarded = joinPath(path, ".\(id).emptied-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try disk.rename(target, discarded)
            try disk.syncDirectory(path)
            let emptied = try LocalShard(path: target, disk: disk, config: config, payloadSchema: payloadSchema, space: space)
            try await emptied.clearRecoveryPoint()
            shards[id] = emptied
        } catch {
            throw .serviceError("cannot empty shard \(id) of collection `\(name)` for a transfer: \(error)")
        }
        try? disk.removeItem(discarded)
    }

    /// The transfers of this collection, as `GET /collections/{c}/cluster` lists them; the source
    /// peer adds its progress.
    var transferInfo: [ShardTransferInfo] {
        transfers.map { transfer in
            ShardTransferInfo(shardID: transfer.shard, toShardID: transfer.toShard, from: transfer.from, to: transfer.to, sync: transfer.sync,
                              method: transfer.method, comment: outgoing[transfer.shard].flatMap { $0.transfer == transfer ? $0.comment : nil })
        }
    }

    /// Registers this peer as the source of `transfer` (which must be in the catalogue, its shard
    /// held here): the relay through which updates are forwarded once it forwards.
    func beginOutgoing(_ transfer: ShardTransfer) throws(StorageError) -> TransferRelay {
        guard transfers.contains(transfer) else { throw .badRequest("There is no transfer for \(transfer.key)") }
        try checkLocalShard(transfer.shard)
        let relay = TransferRelay(transfer)
        outgoing[transfer.shard]?.cancel()
        outgoing[transfer.shard] = relay
        return relay
    }

    func endOutgoing(_ relay: TransferRelay) {
        relay.cancel()
        if outgoing[relay.transfer.shard] === relay { outgoing[relay.transfer.shard] = nil }
    }

    /// Sends an update this peer applied to shard `id` on to the target of its transfer, forced: the
    /// target takes it in this order whatever it has seen of its clock, and applies it to the
    /// points it has (a point it does not have yet comes in a later batch with the update
    /// applied). Any failure fails the transfer.
    ///
    /// Into another shard, the update goes without its clock tag (the clocks are the source
    /// shard's), and only to the points ``copiedPoints(_:matching:shard:via:)`` chose before it
    /// applied here (an upsert: those of its points that match the transfer's filter now).
    func forward(_ operation: UpdateOperation, shard id: UInt32, clock: ClockTag?, filter: Filter?, condition: UpdateCondition?,
                 via relay: TransferRelay, copied: [PointID]? = nil) async {
        guard let network else { return }
        let transfer = relay.transfer
        var operation = operation, filter = filter
        if transfer.isCrossShard {
            if case .upsert = operation {
                guard let shard = shards[id], let only = try? prepare(transfer.filter) else { return }
                let ids = operation.ids
                let matching: Set<PointID>
                if let holds = Self.onIDs(only) {
                    matching = Set(ids.filter(holds))
                } else {
                    matching = Set(await shard.scroll(from: nil, limit: ids.count, filter: Filter(must: [.filter(only), .hasID(Set(ids))]),
                                                      withPayload: .none, withVector: .none).map(\.id))
                }
                operation = operation.restricted(to: matching.contains)
            } else if let copied {
                operation = filter == nil ? operation.restricted(to: Set(copied).contains) : operation.selecting(copied)
                filter = nil
            }
            guard !operation.ids.isEmpty else { return }
        }
        var tag = (transfer.isCrossShard ? nil : clock) ?? ClockTag(peerID: peerID, clockID: UInt32.max, tick: 0, token: 0)
        tag.force = true
        let target = transfer.targetShard
        do {
            let ack = try await network.update([target: operation], clocks: [target: tag], filter: filter, condition: condition,
                                               collection: name, wait: false, on: transfer.to)
            if case .failure(let error) = ack.outcome(of: target) { relay.fail(error) }
        } catch {
            relay.fail(error)
        }
    }

    /// For a transfer into another shard, the points an update other than an upsert reaches there,
    /// chosen before it applies here: those it names (or its filter matches) that match the
    /// transfer's filter, so the target's own points are left alone. Nil for other transfers.
    func copiedPoints(_ operation: UpdateOperation, matching prepared: Filter?, shard: LocalShard, via relay: TransferRelay) async -> [PointID]? {
        guard relay.transfer.isCrossShard, relay.isForwarding else { return nil }
        if case .upsert = operation { return nil }
        guard let only = try? prepare(relay.transfer.filter) else { return [] }
        if prepared == nil, let holds = Self.onIDs(only) { return operation.ids.filter(holds) }
        var conditions: [Condition] = [.filter(only)]
        if let prepared { conditions.append(.filter(prepared)) } else { conditions.append(.hasID(Set(operation.ids))) }
        return await shard.scroll(from: nil, limit: Int(UInt32.max), filter: Filter(must: conditions), withPayload: .none, withVector: .none).map(\.id)
    }

    /// A filter of point ownership alone (a resharding's) as a test of ids, which needs no lookup.
    static func onIDs(_ filter: Filter) -> ((PointID) -> Bool)? {
        guard filter.should == nil, filter.mustNot == nil, filter.minShould == nil, let must = filter.must,
              must.allSatisfy({ if case .owner = $0 { true } else { false } }) else { return nil }
        return { id in filter.matches(id: id, payload: nil, hasVector: { _ in false }) }
    }

    /// A `stream_records` transfer from this peer, once its relay is registered: waits until the
    /// target takes updates of the shard (it has applied the transfer's start), forwards every
    /// update from then on, and sends the shard's records in batches by id. Returns when every
    /// record has been sent; the caller then proposes the end of the transfer while updates are
    /// still forwarded.
    func streamRecords(_ relay: TransferRelay) async throws(StorageError) {
        try await startStream(relay)
        var offset: PointID?
        repeat {
            offset = try await streamBatch(relay, from: offset)
        } while offset != nil
        try check(relay)
        relay.stage("finalizing")
    }

    /// The start of a stream: once the target takes updates of the shard, every update applied
    /// here is forwarded to it.
    func startStream(_ relay: TransferRelay) async throws(StorageError) {
        try await awaitTarget(relay)
        await relay.lock.lock()
        relay.startForwarding()
        relay.lock.unlock()
        relay.stage("transferring")
    }

    /// Sends the shard's records from id `offset` on (`limit` of them), read and sent under the
    /// relay's lock; returns where the next batch starts, nil after the last one.
    func streamBatch(_ relay: TransferRelay, from offset: PointID?, limit: Int = Collection.transferBatch) async throws(StorageError) -> PointID? {
        try check(relay)
        let id = relay.transfer.shard
        guard let shard = shards[id] else { throw .shardNotHere(id, collection: name, peer: peerID) }
        let only = try prepare(relay.transfer.filter)
        await relay.lock.lock()
        let page = await shard.scroll(from: offset, limit: limit + 1, filter: only, withPayload: .all, withVector: .all)
        let total = await shard.pointCount
        let batch = page.prefix(limit).map { PointStruct(id: $0.id, vectors: $0.vectors ?? [:], sparse: $0.sparse ?? [:], payload: $0.payload) }
        let result = await sendBatch(batch, shard: relay.transfer.targetShard, to: relay.transfer.to)
        relay.lock.unlock()
        try result.get()
        relay.progress(done: relay.sent + batch.count, total: total)
        return page.count > limit ? page[limit].id : nil
    }

    private func sendBatch(_ points: [PointStruct], shard id: UInt32, to peer: UInt64) async -> Result<Void, StorageError> {
        guard !points.isEmpty, let network else { return .success(()) }
        do {
            let ack = try await network.update([id: .upsert(points)], clocks: [:], filter: nil, condition: nil, collection: name,
                                               wait: false, on: peer)
            return ack.outcome(of: id).map { _ in () }
        } catch {
            return .failure(error)
        }
    }

    /// A `wal_delta` transfer from this peer, once its relay is registered: once the target has
    /// applied the transfer's start (its replica in `Recovery`, taking only forced updates), the
    /// records of this replica's WAL the target lacks (from its recovery point on) are replayed
    /// to it in order, forced, the last ones under the relay's lock, after which every update
    /// applied here is forwarded. Returns why no delta can do it (the WAL no longer reaches back,
    /// or the target has nothing to start from), nil once the target has caught up.
    func walDelta(_ relay: TransferRelay) async throws(StorageError) -> WALDeltaError? {
        try await awaitTarget(relay)
        guard let network else { throw .standaloneMode }
        let id = relay.transfer.shard
        guard let shard = shards[id] else { throw .shardNotHere(id, collection: name, peer: peerID) }
        guard case .clocks(let point) = try await network.read(.recoveryPoint, collection: name, shards: [id], on: relay.transfer.to) else {
            throw .serviceError("peer \(relay.transfer.to) answered a recovery point with something else")
        }
        relay.stage("resolving WAL delta")
        let last = await shard.walLastSequence
        var next: UInt64
        do {
            next = try await shard.resolveDelta(for: point, holding: relay.transfer.started) ?? last + 1
        } catch {
            return error
        }
        let total = Int(last + 1 - min(next, last + 1))
        relay.stage("transferring WAL delta")
        let outcome: Result<Void, StorageError>
        do {
            try await catchUp(relay, shard: shard, from: next, total: total)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        await shard.holdWAL(from: nil, for: relay.transfer.started)
        try outcome.get()
        try check(relay)
        relay.stage("finalizing")
        return nil
    }

    /// Replays `shard`'s WAL records from `next` on to the relay's target: the bulk without the
    /// relay's lock, then the rest with it, and forwarding every update from there on.
    private func catchUp(_ relay: TransferRelay, shard: LocalShard, from next: UInt64, total: Int) async throws(StorageError) {
        var next = next
        while try await replayRecords(relay, shard: shard, from: &next, total: total, limit: Self.transferBatch) == Self.transferBatch {}
        await relay.lock.lock()
        let tail: Result<Void, StorageError>
        do {
            while try await replayRecords(relay, shard: shard, from: &next, total: total, limit: Self.transferBatch) > 0 {}
            relay.startForwarding()
            tail = .success(())
        } catch {
            tail = .failure(error)
        }
        relay.lock.unlock()
        try tail.get()
    }

    /// Bytes per call of a snapshot sent to a transfer's target.
    static let snapshotChunk = 1 << 20

    /// A `snapshot` transfer from this peer, once its relay is registered: once the target has
    /// applied the transfer's start (its replica in `Recovery`), a snapshot of the shard (its
    /// segments as they are, graphs and quantized codes included) is archived at `scratch` and
    /// sent; the target puts it in place of its replica. The updates applied here since the
    /// snapshot are then replayed from the WAL, forced and in order, and every update from then
    /// on is forwarded.
    func snapshotTransfer(_ relay: TransferRelay, scratch: String) async throws(StorageError) {
        try await awaitTarget(relay)
        guard let network else { throw .standaloneMode }
        let id = relay.transfer.shard
        guard let shard = shards[id] else { throw .shardNotHere(id, collection: name, peer: peerID) }
        relay.stage("creating snapshot")
        let directory = scratch + ".shard", archive = scratch + ".tar"
        let outcome: Result<Void, StorageError>
        do throws(StorageError) {
            let version = try await snapshotForTransfer(shard, id: id, into: directory, holding: relay.transfer.started)
            let size = try await Self.archive(directory, to: archive, disk: disk).size
            relay.stage("transferring snapshot")
            var offset: UInt64 = 0
            repeat {
                try check(relay)
                let chunk = try Self.read(archive, count: Self.snapshotChunk, at: offset, disk: disk)
                let final = offset + UInt64(chunk.count) >= size
                try await network.pushSnapshot(chunk, offset: offset, final: final, transfer: relay.transfer, collection: name,
                                               to: relay.transfer.to)
                offset += UInt64(chunk.count)
                relay.progress(done: Int(offset / 1024), total: Int(size / 1024))
            } while offset < size
            relay.stage("transferring queued updates")
            let last = await shard.walLastSequence
            try await catchUp(relay, shard: shard, from: version + 1, total: Int(last - min(version, last)))
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        await shard.holdWAL(from: nil, for: relay.transfer.started)
        try? disk.removeItem(directory)
        try? disk.removeItem(archive)
        try outcome.get()
        try check(relay)
        relay.stage("finalizing")
    }

    private func snapshotForTransfer(_ shard: LocalShard, id: UInt32, into directory: String, holding holder: UInt64) async throws(StorageError) -> UInt64 {
        do {
            return try await shard.snapshotForTransfer(into: directory, holding: holder)
        } catch {
            throw .serviceError("cannot snapshot shard \(id) of collection `\(name)`: \(error)")
        }
    }

    /// Archives a snapshot directory off the collection's actor, and removes the directory.
    nonisolated static func archive(_ directory: String, to archive: String, disk: any Disk) async throws(StorageError) -> SnapshotArchive.Written {
        let written = try SnapshotArchive.write(directory, to: archive, disk: disk)
        try? disk.removeItem(directory)
        return written
    }

    nonisolated static func read(_ path: String, count: Int, at offset: UInt64, disk: any Disk) throws(StorageError) -> [UInt8] {
        do {
            let file = try disk.open(path, create: false)
            defer { file.close() }
            return try file.read(count: count, at: offset)
        } catch {
            throw .serviceError("cannot read \(path): \(error)")
        }
    }

    /// Sends up to `limit` WAL records of `shard` from `next` on to the relay's target, each forced
    /// under its own clock tag, one call each in order; moves `next` past them and returns how many.
    private func replayRecords(_ relay: TransferRelay, shard: LocalShard, from next: inout UInt64, total: Int, limit: Int) async throws(StorageError) -> Int {
        try check(relay)
        let records: [(sequence: UInt64, operation: UpdateOperation, clock: ClockTag?)]
        do {
            records = try await shard.walRecords(from: next, limit: limit)
        } catch {
            throw .serviceError("cannot read the WAL of shard \(relay.transfer.shard) of collection `\(name)`: \(error)")
        }
        for record in records {
            var tag = record.clock ?? ClockTag(peerID: peerID, clockID: UInt32.max, tick: 0, token: 0)
            tag.force = true
            try await sendForced(record.operation, shard: relay.transfer.shard, clock: tag, to: relay.transfer.to)
            next = record.sequence + 1
        }
        relay.progress(done: relay.sent + records.count, total: total)
        return records.count
    }

    private func sendForced(_ operation: UpdateOperation, shard id: UInt32, clock: ClockTag, to peer: UInt64) async throws(StorageError) {
        guard let network else { throw .standaloneMode }
        let ack = try await network.update([id: operation], clocks: [id: clock], filter: nil, condition: nil, collection: name, wait: false, on: peer)
        if case .failure(let error) = ack.outcome(of: id) { throw error }
    }

    func check(_ relay: TransferRelay) throws(StorageError) {
        if relay.isCancelled { throw .badRequest("The transfer of \(relay.transfer.key) was ended") }
        if let failure = relay.failure { throw failure }
    }

    /// Waits (at most a minute) until the target has applied the start of this very transfer
    /// (and so emptied its replica when it had one, and takes its updates).
    private func awaitTarget(_ relay: TransferRelay) async throws(StorageError) {
        guard let network else { throw .standaloneMode }
        let id = relay.transfer.shard
        let deadline = ContinuousClock.now + .seconds(60)
        var unreachableSince: ContinuousClock.Instant?
        while true {
            try check(relay)
            let outcome: Result<ShardResponse, StorageError>
            do {
                outcome = .success(try await network.read(.transferTarget(relay.transfer), collection: name, shards: [id], on: relay.transfer.to))
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(.count(1)): return
            case .success where ContinuousClock.now > deadline:
                throw .timeout("Failed to initiate shard transfer: the target did not start it in 60 seconds")
            case .success:
                unreachableSince = nil
                try? await Task.sleep(for: .milliseconds(100))
            case .failure(let error) where ContinuousClock.now > deadline:
                throw .timeout("Failed to initiate shard transfer: the target did not take updates of the shard in 60 seconds (\(error))")
            case .failure(let error) where error.isUnreachable:
                // A target that does not answer for ten seconds is gone: the transfer fails.
                let since = unreachableSince ?? .now
                unreachableSince = since
                if ContinuousClock.now - since > .seconds(10) {
                    throw .unavailable("Failed to initiate shard transfer: the target does not answer (\(error))")
                }
                try? await Task.sleep(for: .milliseconds(100))
            case .failure:
                unreachableSince = nil
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
