import DiskIO
public import Logging
public import QuiverModel
import Consensus
import Shard

/// Runs this peer's side of shard transfers (DESIGN.md §6), called every few hundred milliseconds:
/// - drives each transfer in the catalogue whose source is this peer, and proposes its next
///   step: a `Recovery` target's recovery, the end, or its abort when it fails, or its restart
///   with `stream_records` when a `wal_delta` cannot bring the target up to date;
/// - asks for a transfer into each `Dead` replica of this peer from an `Active` replica on a
///   responsive peer (automatic recovery, `wal_delta` first), within the incoming and outgoing
///   transfer limits;
/// - starts a replication for each shard short of its collection's `replication_factor` whose
///   lowest `Active` replica is this peer's;
/// - on the consensus leader, moves the replicas of draining peers away, and (rebalancing) moves
///   replicas from the most to the least loaded peer until they hold within one of each other;
/// - once, at start, aborts the transfers this peer took part in before it restarted (their task
///   died with the process), those started up to the last consensus entry it had applied.
public actor TransferDriver {
    struct Ref: Hashable {
        var collection: String
        var transfer: ShardTransfer
    }

    let consensus: ConsensusManager
    let toc: TableOfContent
    let logger: Logger
    /// `storage.performance.incoming_shard_transfers_limit` / `outgoing_…`: automatic transfers a
    /// peer receives / sends per collection at once (nil: no limit).
    let incomingLimit: Int?
    let outgoingLimit: Int?
    /// False for a peer whose calls have been failing: not chosen as a source.
    let isResponsive: @Sendable (UInt64) -> Bool
    /// Automatic recovery on or off.
    let recovers: Bool
    /// New replicas for shards short of their replication factor, on or off.
    let restoresReplicationFactor: Bool
    /// Rebalancing on or off (draining peers are emptied either way).
    let rebalances: Bool
    /// The cluster's peers.
    let members: @Sendable () -> [UInt64]
    /// Waits (at most the given time) until every reachable peer, this one included, has applied
    /// the given consensus index and has no write on its way that it routed before.
    let awaitPeers: @Sendable (UInt64, Duration) async -> Void
    private var running: [Ref: Task<Void, Never>] = [:]
    /// Transfers whose data is all on the target, with their relay: their next step is proposed
    /// until the transfer leaves the catalogue, and the relay watched until this peer's storage
    /// takes the end.
    private var complete: [Ref: TransferRelay] = [:]
    /// Transfers that will not run again here, with the change to propose until one applies (their
    /// abort, or their restart with another method).
    private var settling: [Ref: MetadataOperation] = [:]
    /// Targets that became `Active` while a forwarded update did not reach them: proposed `Dead`
    /// until that applies (they are then recovered).
    private var missed: Set<Ref> = []
    /// Transfers whose next step is being proposed (one at a time each).
    private var advancing: Set<Ref> = []
    /// The leader's resharding step under way.
    private var reshardingStep: Task<Void, Never>?
    private var cleaned = false

    public init(consensus: ConsensusManager, toc: TableOfContent, logger: Logger, incomingLimit: Int? = 1, outgoingLimit: Int? = 1,
                recovers: Bool = true, restoresReplicationFactor: Bool = true, rebalances: Bool = true, isResponsive: @escaping @Sendable (UInt64) -> Bool,
                members: @escaping @Sendable () -> [UInt64], awaitPeers: @escaping @Sendable (UInt64, Duration) async -> Void) {
        self.consensus = consensus
        self.toc = toc
        self.logger = logger
        self.incomingLimit = incomingLimit
        self.outgoingLimit = outgoingLimit
        self.recovers = recovers
        self.restoresReplicationFactor = restoresReplicationFactor
        self.rebalances = rebalances
        self.isResponsive = isResponsive
        self.members = members
        self.awaitPeers = awaitPeers
    }

    /// One round; `ready` once this peer has applied what the leader has committed.
    public func tick(ready: Bool) async {
        guard ready else { return }
        let me = consensus.peerId
        let metadata = consensus.metadata
        if !cleaned {
            cleaned = true
            // Only those its previous process knew: a transfer started since (into a peer that
            // just joined, say) runs.
            for (name, list) in metadata.transfers.sorted(by: { $0.key < $1.key }) {
                for transfer in list where (transfer.from == me || transfer.to == me) && transfer.started <= consensus.indexAtStart {
                    await propose(.abortTransfer(collection: name, transfer: transfer.key, reason: "Source or target peer restarted",
                                                 started: transfer.started))
                }
            }
            return
        }
        var current: Set<Ref> = []
        for (name, list) in metadata.transfers {
            for transfer in list where transfer.from == me {
                let ref = Ref(collection: name, transfer: transfer)
                current.insert(ref)
                if let change = settling[ref] {
                    await propose(change)
                } else if let relay = complete[ref] {
                    // Its own task: the end waits for every peer, which must not hold up the rest.
                    if advancing.insert(ref).inserted { Task { await self.advance(ref, relay, metadata) } }
                } else if running[ref] == nil {
                    running[ref] = Task { await self.run(transfer, of: name) }
                }
            }
        }
        settling = settling.filter { current.contains($0.key) }
        for (ref, relay) in complete where !current.contains(ref) { await ended(ref, relay, metadata) }
        for ref in missed {
            let transfer = ref.transfer
            let state = metadata.shards[ref.collection]?.first { $0.id == transfer.shard }.map { $0.peers.contains(transfer.to) ? $0.state(of: transfer.to) : nil }
            guard state == .active else {
                missed.remove(ref)
                continue
            }
            if case .refused = await propose(.setReplicaState(collection: ref.collection, shard: transfer.shard, peer: transfer.to, state: .dead, from: .active)) {
                logger.error("A transfer's target missed a forwarded update and cannot be marked Dead (it is the shard's last active replica)",
                             metadata: described(transfer, ref.collection))
                missed.remove(ref)
            }
        }
        if recovers && !metadata.drainingPeers.contains(me) { await recoverDeadReplicas(metadata, me: me) }
        if restoresReplicationFactor { await addMissingReplicas(metadata, me: me) }
        if consensus.engine?.status.leader == me {
            await rearrange(metadata)
            if reshardingStep == nil, metadata.routing.values.contains(where: { $0.resharding != nil }) {
                reshardingStep = Task {
                    await self.advanceReshardings(metadata)
                    self.reshardingStep = nil
                }
            }
        }
    }

    /// The leader's step of each resharding (see ``Resharding``): once every peer has applied
    /// `preparing`, on to `migrating`; while `migrating`, the next copy not done (one transfer at a
    /// time per collection), or `readCommitted` once all are; the next stages and the end each
    /// once every reachable peer has applied the one before (and has no write in flight routed
    /// before it). A scale-up whose new replica died is aborted.
    private func advanceReshardings(_ metadata: ClusterMetadata) async {
        for (name, routing) in metadata.routing.sorted(by: { $0.key < $1.key }) {
            guard let resharding = routing.resharding, let layout = metadata.shards[name] else { continue }
            let next: MetadataOperation
            switch resharding.stage {
            case .preparing, .readCommitted, .writeCommitted, .cleaned, .aborting, .aborted:
                // The clean-up waits for streams into replicas of the group (see ClusterMetadata).
                let group = Set(layout.filter { $0.key == resharding.key }.map(\.id))
                if resharding.stage == .writeCommitted || resharding.stage == .aborting,
                   (metadata.transfers[name] ?? []).contains(where: { !$0.isCrossShard && group.contains($0.shard) }) { continue }
                await awaitPeers(metadata.appliedIndex, .seconds(10))
                let following: [Resharding.Stage: Resharding.Stage] = [.preparing: .migrating, .readCommitted: .writeCommitted,
                                                                       .writeCommitted: .cleaned, .aborting: .aborted]
                next = following[resharding.stage].map { .reshardingStage(collection: name, stage: $0) } ?? .finishResharding(collection: name)
            case .migrating:
                // A new shard whose replica died (or left), or a removed shard with no replica
                // left to copy from: the resharding cannot complete.
                let shard = layout.first { $0.id == resharding.shard }
                let lost = switch resharding.direction {
                case .up: shard.map { shard in shard.peers.isEmpty || shard.peers.contains { shard.state(of: $0) == .dead } } ?? true
                case .down: shard.map { shard in !shard.peers.contains { shard.state(of: $0).isActive } } ?? true
                }
                if lost {
                    logger.warning("A resharding lost the replica it needs; aborting it", metadata: ["collection": "\(name)", "shard": "\(resharding.shard)"])
                    next = .abortResharding(collection: name)
                    break
                }
                guard !(metadata.transfers[name] ?? []).contains(where: { $0.method == .reshardingStreamRecords }) else { continue }
                let missing = resharding.copies(layout).filter { !resharding.copied.contains($0) }
                guard let copy = missing.first else {
                    await awaitPeers(metadata.appliedIndex, .seconds(10))
                    next = .reshardingStage(collection: name, stage: .readCommitted)
                    break
                }
                let sources = layout.first { $0.id == copy.from }.map { shard in
                    shard.peers.filter { shard.state(of: $0).isActive && isResponsive($0) }.sorted()
                } ?? []
                // From the peer the resharding names (a scale-down's), else the target's own replica
                // of the source when it has one, else the lowest.
                let preferred = [resharding.direction == .down ? resharding.peer : nil, copy.peer].compactMap { $0 }
                guard let source = preferred.first(where: sources.contains) ?? sources.first,
                      let transfer = resharding.transfer(copy, from: source, layout: layout, ring: routing.ring) else { continue }
                next = .startTransfer(collection: name, transfer: transfer)
            }
            if case .applied = await propose(next) {
                let step = switch next {
                case .startTransfer(_, let transfer): "copying shard \(transfer.shard) into shard \(transfer.targetShard) on peer \(transfer.to)"
                case .reshardingStage(_, let stage): stage.rawValue
                case .abortResharding: "aborting"
                default: "finished"
                }
                logger.info("Resharding", metadata: ["collection": "\(name)", "direction": "\(resharding.direction.rawValue)",
                                                     "shard": "\(resharding.shard)", "step": "\(step)"])
            }
        }
    }

    /// On the leader, for each collection with no transfer running: the first replica on a
    /// draining peer moves to the responsive peer without one that holds the fewest replicas of
    /// the collection (or, when it cannot move, is dropped if another replica is `Active`); else,
    /// rebalancing, a replica of a shard without a shard key whose replicas are all `Active` moves
    /// from the responsive peer holding the most to the one holding the fewest, when they differ
    /// by more than one. One move per collection at a time keeps it bounded.
    private func rearrange(_ metadata: ClusterMetadata) async {
        let peers = members().filter { !metadata.drainingPeers.contains($0) && isResponsive($0) }.sorted()
        guard !peers.isEmpty else { return }
        for (name, layout) in metadata.shards.sorted(by: { $0.key < $1.key })
            where metadata.transfers[name]?.isEmpty ?? true && metadata.routing[name]?.resharding == nil {
            var load = Dictionary(uniqueKeysWithValues: peers.map { ($0, 0) })
            for shard in layout { for peer in shard.peers where load[peer] != nil { load[peer]! += 1 } }
            func lightest(_ shard: ShardInfo) -> UInt64? {
                peers.filter { !shard.peers.contains($0) }.min { (load[$0]!, $0) < (load[$1]!, $1) }
            }
            if let (shard, peer) = layout.lazy.flatMap({ shard in shard.peers.filter(metadata.drainingPeers.contains).map { (shard, $0) } }).first {
                if shard.state(of: peer).isActive, isResponsive(peer), let target = lightest(shard) {
                    let transfer = ShardTransfer(shard: shard.id, from: peer, to: target, sync: false, method: .streamRecords)
                    if case .applied = await propose(.startTransfer(collection: name, transfer: transfer)) {
                        logger.info("Moving a replica off a draining peer", metadata: described(transfer, name))
                    }
                } else if shard.peers.contains(where: { $0 != peer && shard.state(of: $0).isActive }) {
                    // Nowhere to move it, or nothing to move it from (not Active, or its peer
                    // does not answer): the other replicas serve.
                    if case .applied = await propose(.removeReplica(collection: name, shard: shard.id, peer: peer)) {
                        logger.info("Dropped a replica of a draining peer", metadata: ["collection": "\(name)", "shard": "\(shard.id)", "peer": "\(peer)"])
                    }
                }
                continue
            }
            guard rebalances, peers.count > 1 else { continue }
            let heaviest = peers.max { (load[$0]!, $1) < (load[$1]!, $0) }!
            let lightestPeer = peers.min { (load[$0]!, $0) < (load[$1]!, $1) }!
            guard load[heaviest]! - load[lightestPeer]! > 1 else { continue }
            // Shards of a shard key stay where their key placed them.
            let movable = layout.filter { shard in
                shard.key == nil && shard.peers.contains(heaviest) && !shard.peers.contains(lightestPeer) && shard.peers.allSatisfy { shard.state(of: $0).isActive }
            }
            guard let shard = movable.first else { continue }
            let transfer = ShardTransfer(shard: shard.id, from: heaviest, to: lightestPeer, sync: false, method: .streamRecords)
            if case .applied = await propose(.startTransfer(collection: name, transfer: transfer)) {
                logger.info("Rebalancing: moving a replica to the least loaded peer", metadata: described(transfer, name))
            }
        }
    }

    /// Starts a replication for each shard with fewer replicas than its collection's
    /// `replication_factor` whose lowest `Active` replica is this peer's, when no transfer of the
    /// shard runs: to the responsive peer without a replica of it that holds the fewest replicas of
    /// the collection (ties to the lowest id), within the outgoing limit.
    private func addMissingReplicas(_ metadata: ClusterMetadata, me: UInt64) async {
        let peers = members().sorted()
        for (name, layout) in metadata.shards.sorted(by: { $0.key < $1.key }) {
            guard let config = metadata.collections[name] else { continue }
            var transfers = metadata.transfers[name] ?? []
            var load = Dictionary(uniqueKeysWithValues: peers.map { ($0, 0) })
            for shard in layout { for peer in shard.peers { load[peer, default: 0] += 1 } }
            for shard in layout where shard.peers.count < Int(config.params.replicationFactor) {
                guard shard.peers.filter({ shard.state(of: $0).isActive }).min() == me,
                      !transfers.contains(where: { $0.shard == shard.id }) else { continue }
                if let outgoingLimit, transfers.filter({ $0.from == me }).count >= outgoingLimit { break }
                let candidates = peers.filter { !shard.peers.contains($0) && isResponsive($0) && !metadata.drainingPeers.contains($0) }
                guard let target = candidates.min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }) else { continue }
                let transfer = ShardTransfer(shard: shard.id, from: me, to: target, sync: true, method: .streamRecords)
                if case .applied = await propose(.startTransfer(collection: name, transfer: transfer)) {
                    logger.info("Replicating a shard short of its replication factor", metadata: described(transfer, name))
                    transfers.append(transfer)
                    load[target, default: 0] += 1
                }
            }
        }
    }

    /// The next step of a transfer whose data is on the target: its abort when a forwarded update
    /// failed, the recovery of a `Recovery` target, else its end (a refused end fails it).
    private func advance(_ ref: Ref, _ relay: TransferRelay, _ metadata: ClusterMetadata) async {
        defer { advancing.remove(ref) }
        let transfer = ref.transfer
        if let failure = relay.failure {
            await settle(ref, .abortTransfer(collection: ref.collection, transfer: transfer.key, reason: "forwarding an update failed: \(failure)",
                                             started: transfer.started))
            return
        }
        let state = metadata.shards[ref.collection]?.first { $0.id == transfer.shard }?.state(of: transfer.to)
        let step: MetadataOperation
        if state == .recovery && !transfer.isCrossShard {
            step = .transferRecovered(collection: ref.collection, transfer: transfer.key, started: transfer.started)
        } else {
            // The end stops the forwarding here. A peer that has not yet applied what made the
            // target take updates (its `Partial` state) sends a write to this replica only, and
            // the target would miss it: every peer is waited for first (an unreachable one sends
            // no writes; one that does not answer in time is given up on, as in Qdrant).
            await awaitPeers(metadata.appliedIndex, .seconds(10))
            // Ended meanwhile, or a forward failed while waiting: the next tick sees to it.
            guard relay.failure == nil, complete[ref] != nil,
                  consensus.metadata.transfers[ref.collection]?.contains(transfer) == true else { return }
            step = .finishTransfer(collection: ref.collection, transfer: transfer.key, started: transfer.started)
        }
        if case .refused(let error) = await propose(step) {
            // Gone already (ended by another change): nothing to abort.
            guard consensus.metadata.transfers[ref.collection]?.contains(transfer) == true else { return }
            await settle(ref, .abortTransfer(collection: ref.collection, transfer: transfer.key, reason: "the transfer could not end: \(error)",
                                             started: transfer.started))
        }
    }

    /// A transfer that left the catalogue after its data was sent: once this peer's storage has
    /// taken that (and any update forwarded before has been answered), a forward that failed
    /// means an `Active` target missed it.
    private func ended(_ ref: Ref, _ relay: TransferRelay, _ metadata: ClusterMetadata) async {
        let exists = await toc.collectionExists(ref.collection)
        guard relay.isCancelled || !exists else { return }
        await relay.lock.lock()
        relay.lock.unlock()
        complete[ref] = nil
        guard let failure = relay.failure else { return }
        logger.warning("A transfer's target missed a forwarded update", metadata: described(ref.transfer, ref.collection).merging(["error": "\(failure)"]) { $1 })
        // A replica of another shard that missed a copied point is not out of date with its own shard.
        if !ref.transfer.isCrossShard { missed.insert(ref) }
    }

    /// Records that `ref` will not run again and proposes `change` (again on each tick until it applies).
    private func settle(_ ref: Ref, _ change: MetadataOperation) async {
        complete[ref] = nil
        settling[ref] = change
        await propose(change)
    }

    /// Drives `transfer` of collection `name` from this peer, then proposes its next step; on a
    /// failure, its abort.
    private func run(_ transfer: ShardTransfer, of name: String) async {
        let ref = Ref(collection: name, transfer: transfer)
        defer { running[ref] = nil }
        let collection: Collection, relay: TransferRelay
        switch await begin(transfer, of: name) {
        case .success(let begun): (collection, relay) = begun
        case .failure(let error):
            // Gone from the catalogue meanwhile: nothing to end.
            guard consensus.metadata.transfers[name]?.contains(transfer) == true else { return }
            await settle(ref, .abortTransfer(collection: name, transfer: transfer.key, reason: "transfer failed: \(error)", started: transfer.started))
            return
        }
        logger.info("Shard transfer started", metadata: described(transfer, name))
        do {
            switch transfer.method {
            case .streamRecords, .reshardingStreamRecords:
                try await collection.streamRecords(relay)
            case .walDelta:
                if let reason = try await collection.walDelta(relay) {
                    await collection.endOutgoing(relay)
                    logger.info("A WAL delta cannot recover the target; streaming every record instead",
                                metadata: described(transfer, name).merging(["reason": "\(reason)"]) { $1 })
                    await settle(ref, .restartTransfer(collection: name, transfer: transfer.key, method: .streamRecords, started: transfer.started))
                    return
                }
            case .snapshot:
                try await collection.snapshotTransfer(relay, scratch: await toc.nextTempPath("transfer"))
            }
        } catch {
            // Ended in the catalogue already (its relay cancelled there): nothing to abort.
            let ended = relay.isCancelled
            await collection.endOutgoing(relay)
            if !ended {
                logger.warning("Shard transfer failed", metadata: described(transfer, name).merging(["error": "\(error)"]) { $1 })
                await settle(ref, .abortTransfer(collection: name, transfer: transfer.key, reason: "transmission failed: \(error)", started: transfer.started))
            }
            return
        }
        // Updates are still forwarded until the end applies here; from then on the target is
        // `Active` and takes them as any replica.
        logger.info("Shard transfer sent everything", metadata: described(transfer, name))
        complete[ref] = relay
        advancing.insert(ref)
        await advance(ref, relay, consensus.metadata)
    }

    /// The collection and a relay for `transfer`, once this peer's storage has taken its start
    /// (consensus may have applied it a moment before storage does): retried for ten seconds.
    private func begin(_ transfer: ShardTransfer, of name: String) async -> Result<(Collection, TransferRelay), StorageError> {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                let collection = try await toc.collection(name)
                return .success((collection, try await collection.beginOutgoing(transfer)))
            } catch {
                let stillRunning = consensus.metadata.transfers[name]?.contains(transfer) == true
                guard stillRunning, ContinuousClock.now < deadline else { return .failure(error) }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Asks for a transfer into each `Dead` replica this peer holds, from an `Active` replica on a
    /// responsive peer, when no transfer of the shard runs and the limits allow.
    private func recoverDeadReplicas(_ metadata: ClusterMetadata, me: UInt64) async {
        // A peer refusing writes for want of disk space, or over a quota, recovers nothing until
        // it has room (as Qdrant postpones it): the transfer would fail at its first batch.
        guard toc.space?.admit() == nil, toc.quota?.refusal() == nil else { return }
        for (name, layout) in metadata.shards.sorted(by: { $0.key < $1.key }) {
            var transfers = metadata.transfers[name] ?? []
            for shard in layout where shard.peers.contains(me) && shard.state(of: me) == .dead {
                guard !transfers.contains(where: { $0.shard == shard.id }) else { continue }
                if let incomingLimit, transfers.filter({ $0.to == me }).count >= incomingLimit { break }
                let sources = shard.peers.filter { peer in
                    peer != me && shard.state(of: peer).isActive && isResponsive(peer)
                        && (outgoingLimit.map { limit in transfers.filter { $0.from == peer }.count < limit } ?? true)
                }
                guard let source = sources.sorted().first else { continue }
                let transfer = ShardTransfer(shard: shard.id, from: source, to: me, sync: true, method: .walDelta)
                if case .applied = await propose(.startTransfer(collection: name, transfer: transfer)) {
                    logger.info("Recovering a dead replica", metadata: described(transfer, name))
                    transfers.append(transfer)
                }
            }
        }
    }

    enum Proposal {
        case applied
        /// Consensus applied the change as a refusal: proposing it again changes nothing.
        case refused(StorageError)
        /// Not applied (no leader, timed out): worth proposing again.
        case failed
    }

    @discardableResult
    private func propose(_ operation: MetadataOperation) async -> Proposal {
        do {
            _ = try await consensus.propose(operation, timeout: .seconds(10))
            return .applied
        } catch {
            logger.info("A shard transfer change was not applied", metadata: ["change": "\(operation)", "error": "\(error)"])
            switch error {
            case .unavailable, .timeout, .serviceError: return .failed
            default: return .refused(error)
            }
        }
    }

    private func described(_ transfer: ShardTransfer, _ name: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["collection": "\(name)", "shard": "\(transfer.shard)", "from": "\(transfer.from)",
                                         "to": "\(transfer.to)", "method": "\(transfer.method.rawValue)"]
        if let toShard = transfer.toShard { metadata["to_shard"] = "\(toShard)" }
        return metadata
    }
}
