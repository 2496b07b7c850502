public import Logging
public import QuiverModel

/// Runs this peer's side of shard transfers (DESIGN.md §6), called every few hundred milliseconds:
/// - drives each transfer in the catalogue whose source is this peer, and proposes its end (or its
///   abort when it fails);
/// - asks for a transfer into each `Dead` replica of this peer from an `Active` replica on a
///   responsive peer (automatic recovery), within the incoming and outgoing transfer limits;
/// - once, at start, aborts the transfers this peer took part in before it restarted (their task
///   died with the process).
public actor TransferDriver {
    struct Ref: Hashable {
        var collection: String
        var key: ShardTransfer.Key
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
    private var running: [Ref: Task<Void, Never>] = [:]
    /// Transfers whose data is all on the target: their end is proposed until it applies.
    private var complete: Set<Ref> = []
    private var cleaned = false

    public init(consensus: ConsensusManager, toc: TableOfContent, logger: Logger, incomingLimit: Int? = 1, outgoingLimit: Int? = 1,
                recovers: Bool = true, isResponsive: @escaping @Sendable (UInt64) -> Bool) {
        self.consensus = consensus
        self.toc = toc
        self.logger = logger
        self.incomingLimit = incomingLimit
        self.outgoingLimit = outgoingLimit
        self.recovers = recovers
        self.isResponsive = isResponsive
    }

    /// One round; `ready` once this peer has applied what the leader has committed.
    public func tick(ready: Bool) async {
        guard ready else { return }
        let me = consensus.peerId
        let metadata = consensus.metadata
        if !cleaned {
            cleaned = true
            for (name, list) in metadata.transfers.sorted(by: { $0.key < $1.key }) {
                for transfer in list where transfer.from == me || transfer.to == me {
                    await propose(.abortTransfer(collection: name, transfer: transfer.key, reason: "Source or target peer restarted"))
                }
            }
            return
        }
        var current: Set<Ref> = []
        for (name, list) in metadata.transfers {
            for transfer in list where transfer.from == me {
                let ref = Ref(collection: name, key: transfer.key)
                current.insert(ref)
                if complete.contains(ref) {
                    await propose(.finishTransfer(collection: name, transfer: transfer.key))
                } else if running[ref] == nil {
                    running[ref] = Task { await self.run(transfer, of: name) }
                }
            }
        }
        complete.formIntersection(current)
        if recovers { await recoverDeadReplicas(metadata, me: me) }
    }

    /// Drives `transfer` of collection `name` from this peer, then proposes its end; on a failure,
    /// its abort.
    private func run(_ transfer: ShardTransfer, of name: String) async {
        let ref = Ref(collection: name, key: transfer.key)
        defer { running[ref] = nil }
        let collection: Collection, relay: TransferRelay
        do {
            collection = try await toc.collection(name)
            relay = try await collection.beginOutgoing(transfer)
        } catch {
            await propose(.abortTransfer(collection: name, transfer: transfer.key, reason: "transfer failed: \(error)"))
            return
        }
        logger.info("Shard transfer started", metadata: described(transfer, name))
        do {
            switch transfer.method {
            case .streamRecords:
                try await collection.streamRecords(relay)
            case .snapshot, .walDelta, .reshardingStreamRecords:
                throw StorageError.badRequest("Shard transfer method \(transfer.method.rawValue) is not supported by this version")
            }
        } catch {
            await collection.endOutgoing(relay)
            if !relay.isCancelled {
                logger.warning("Shard transfer failed", metadata: described(transfer, name).merging(["error": "\(error)"]) { $1 })
                await propose(.abortTransfer(collection: name, transfer: transfer.key, reason: "transmission failed: \(error)"))
            }
            return
        }
        // Updates are still forwarded until the end applies here; from then on the target is
        // `Active` and takes them as any replica.
        complete.insert(ref)
        await propose(.finishTransfer(collection: name, transfer: transfer.key))
        logger.info("Shard transfer done", metadata: described(transfer, name))
    }

    /// Asks for a transfer into each `Dead` replica this peer holds, from an `Active` replica on a
    /// responsive peer, when no transfer of the shard runs and the limits allow.
    private func recoverDeadReplicas(_ metadata: ClusterMetadata, me: UInt64) async {
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
                let transfer = ShardTransfer(shard: shard.id, from: source, to: me, sync: true, method: .streamRecords)
                if await propose(.startTransfer(collection: name, transfer: transfer)) {
                    logger.info("Recovering a dead replica", metadata: described(transfer, name))
                    transfers.append(transfer)
                }
            }
        }
    }

    @discardableResult
    private func propose(_ operation: MetadataOperation) async -> Bool {
        do {
            _ = try await consensus.propose(operation, timeout: .seconds(10))
            return true
        } catch {
            logger.info("A shard transfer change was not applied", metadata: ["change": "\(operation)", "error": "\(error)"])
            return false
        }
    }

    private func described(_ transfer: ShardTransfer, _ name: String) -> Logger.Metadata {
        ["collection": "\(name)", "shard": "\(transfer.shard)", "from": "\(transfer.from)", "to": "\(transfer.to)",
         "method": "\(transfer.method.rawValue)"]
    }
}
