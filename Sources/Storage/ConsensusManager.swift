public import Consensus
public import DiskIO
import Dispatch
public import Logging
public import QuiverJSON
public import QuiverModel
import Synchronization

/// Reaches other peers for the consensus manager; the p2p service implements it.
public protocol ConsensusPeers: Sendable {
    /// Asks the leader at `address` to propose `entry`; returns the entry's log index once committed.
    func forwardProposal(_ entry: [UInt8], leader: UInt64, address: String) async throws(StorageError) -> UInt64
}

/// Cluster metadata through consensus (DESIGN.md §3–4): the state machine that the engine drives,
/// and the door through which this peer proposes changes and waits for them to apply.
///
/// Applying an entry updates the pure ``ClusterMetadata`` and then brings the node's
/// ``TableOfContent`` to it (creating or deleting local collection directories). The index of the
/// last entry whose effects reached the disk is persisted in `consensus_applied.json`, so that the
/// log replayed at start-up rebuilds the catalogue without touching collections twice.
///
/// A single node runs the same manager over a one-member ``LocalConsensus`` (see
/// ``standalone(toc:disk:logger:)``): its changes take the cluster's path, with no log to replay.
public final class ConsensusManager: ConsensusStateMachine, @unchecked Sendable {
    public let toc: TableOfContent
    public let peerId: UInt64
    private let disk: any Disk
    private let logger: Logger
    /// Where the applied index is recorded; nil when there is no log to replay (a single node).
    private let appliedPath: String?

    private struct Inner {
        var metadata = ClusterMetadata()
        /// Index of the last entry whose effects are on disk.
        var effectsIndex: UInt64 = 0
        /// Outcomes of this peer's own proposals, by operation id, until their proposer collects them.
        var outcomes: [UInt64: Outcome?] = [:]
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var snapshotsRestored = 0
        /// The storage could not take the last change (a full disk): it is brought to the
        /// catalogue again by ``retryStorageEffects()``.
        var effectsFailed = false
        var lastRetry: ContinuousClock.Instant?
    }

    /// An operation's answer and the log index it was applied at.
    private struct Outcome {
        var result: Result<Bool, StorageError>
        var index: UInt64
    }

    private let inner = Mutex(Inner())
    private let engineStorage = Mutex<(engine: (any ConsensusEngine)?, peers: (any ConsensusPeers)?)>((nil, nil))

    public init(toc: TableOfContent, peerId: UInt64, disk: any Disk, logger: Logger, replaysLog: Bool = true) throws(StorageError) {
        self.toc = toc
        self.peerId = peerId
        self.disk = disk
        self.logger = logger
        appliedPath = replaysLog ? joinPath(toc.storagePath, "consensus_applied.json") : nil
        var recorded: UInt64 = 0
        if let appliedPath, disk.fileExists(appliedPath) {
            do {
                recorded = try JSONValueDecoder().decode(AppliedRecord.self, from: try disk.readFile(appliedPath)).index
                inner.withLock { $0.effectsIndex = recorded }
            } catch {
                throw .serviceError("cannot read \(appliedPath): \(error)")
            }
        }
        indexAtStart = recorded
    }

    /// The last entry this peer's storage had applied when the process started (0 for a new peer):
    /// changes up to it were known to the process before this one.
    public let indexAtStart: UInt64

    /// A single node's manager: the catalogue `toc` loaded from disk, changed through a one-member
    /// consensus engine.
    public static func standalone(toc: TableOfContent, disk: any Disk, logger: Logger) async throws(StorageError) -> ConsensusManager {
        let manager = try ConsensusManager(toc: toc, peerId: await toc.peerID, disk: disk, logger: logger, replaysLog: false)
        do {
            try manager.install(await toc.currentMetadata())
        } catch {
            throw .serviceError("cannot load the catalogue: \(error)")
        }
        manager.attach(engine: LocalConsensus(peerId: manager.peerId, machine: manager), peers: nil)
        return manager
    }

    /// Connects the engine (which needs this state machine first) and the p2p client.
    public func attach(engine: any ConsensusEngine, peers: (any ConsensusPeers)?) {
        engineStorage.withLock { $0 = (engine, peers) }
    }

    public var engine: (any ConsensusEngine)? { engineStorage.withLock { $0.engine } }

    /// The catalogue as applied on this peer.
    public var metadata: ClusterMetadata { inner.withLock { $0.metadata } }

    /// How many snapshots were installed from the leader (or `/cluster/recover`) since start.
    public var snapshotsRestored: Int { inner.withLock { $0.snapshotsRestored } }

    // MARK: Proposing

    private struct Envelope: Codable {
        var id: UInt64
        var operation: MetadataOperation
    }

    /// Proposes `operation` (through the leader) and returns its outcome once this peer applied it.
    /// Fails with ``StorageError/unavailable(_:)`` when there is no leader or quorum within `timeout`.
    public func propose(_ operation: MetadataOperation, timeout: Duration = .seconds(30)) async throws(StorageError) -> Bool {
        try await proposeAndLocate(operation, timeout: timeout).result
    }

    /// ``propose(_:timeout:)``, also returning the log index the operation was applied at.
    public func proposeAndLocate(_ operation: MetadataOperation, timeout: Duration) async throws(StorageError)
        -> (result: Bool, index: UInt64) {
        guard let engine else { throw .standaloneMode }
        let id = UInt64.random(in: 1...UInt64.max)
        let entry: [UInt8]
        do {
            entry = try JSONValueEncoder().encodeBytes(Envelope(id: id, operation: operation))
        } catch {
            throw .serviceError("cannot encode consensus operation: \(error)")
        }
        inner.withLock { $0.outcomes[id] = .some(nil) }
        defer { inner.withLock { _ = $0.outcomes.removeValue(forKey: id) } }
        let deadline = ContinuousClock.now + timeout
        try await submit(entry, engine: engine, deadline: deadline)
        try await waitForOutcome(id, deadline: deadline)
        guard let outcome = inner.withLock({ $0.outcomes[id] ?? nil }) else {
            throw .unavailable("the operation was committed but not applied on this peer within the timeout")
        }
        return (try outcome.result.get(), outcome.index)
    }

    /// Proposes on the leader, retrying while leadership moves, until `deadline`.
    private func submit(_ entry: [UInt8], engine: any ConsensusEngine, deadline: ContinuousClock.Instant) async throws(StorageError) {
        var lastProblem = "there is no consensus leader (a majority of the voting peers must be reachable)"
        while ContinuousClock.now < deadline {
            let status = engine.status
            do {
                if status.role == .leader {
                    _ = try await withDeadline(deadline) { () async throws(ConsensusError) in try await engine.propose(entry) }
                    return
                }
                if let leader = status.leader, let address = status.leaderAddress,
                   let peers = engineStorage.withLock({ $0.peers }) {
                    _ = try await withDeadline(deadline) { () async throws(StorageError) in
                        try await peers.forwardProposal(entry, leader: leader, address: address)
                    }
                    return
                }
            } catch let error as ConsensusError {
                switch error {
                case .notLeader, .leadershipLost: lastProblem = error.description
                case .shutdown: throw .unavailable(error.description)
                default: throw .serviceError(error.description)
                }
            } catch let error as StorageError {
                if case .unavailable(let message) = error { lastProblem = message } else { throw error }
            } catch is DeadlineExceeded {
                break
            } catch {
                throw .serviceError("\(error)")
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        throw .unavailable("the metadata change was not committed in time: \(lastProblem)")
    }

    private func waitForOutcome(_ id: UInt64, deadline: ContinuousClock.Instant) async throws(StorageError) {
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            self.wake(id)
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = inner.withLock { state -> Bool in
                if case .some(.some) = state.outcomes[id] { return true }
                state.waiters[id] = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func wake(_ id: UInt64) {
        inner.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }

    /// Waits until this peer has applied entry `index`, to its local storage too, and has no write
    /// on its way to replicas that was routed before (or `deadline` passes); true if so.
    public func waitApplied(_ index: UInt64, deadline: ContinuousClock.Instant) async -> Bool {
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if hasApplied(index) && toc.routedWrites.allRouted(since: index) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return hasApplied(index) && toc.routedWrites.allRouted(since: index)
    }

    private func hasApplied(_ index: UInt64) -> Bool {
        if toc.routedWrites.appliedIndex >= index { return true }
        // The engine counts an entry applied once `apply` has returned; entries of its own
        // (configuration changes) never reach the catalogue.
        if let engine, engine.status.applied >= index { return true }
        return false
    }

    // MARK: ConsensusStateMachine

    public func apply(index: UInt64, entry: [UInt8]) {
        let envelope: Envelope
        do {
            envelope = try JSONValueDecoder().decode(Envelope.self, from: entry)
        } catch {
            // Every peer skips it alike; the log stays in step.
            logger.error("Skipping a consensus entry that does not decode", metadata: ["index": "\(index)", "error": "\(error)"])
            return
        }
        let (result, effects) = inner.withLock { state -> (Result<Bool, StorageError>?, ClusterMetadata?) in
            guard index > state.metadata.appliedIndex else { return (nil, nil) }
            state.metadata.appliedIndex = index
            let outcome = state.metadata.apply(envelope.operation)
            let due = index > state.effectsIndex
            if case .success = outcome, due { return (outcome, state.metadata) }
            return (outcome, nil)
        }
        var outcome = result
        syncQuota()
        // A change this peer's storage could not take is this peer's failure to report.
        if let effects, let failure = bringStorage(to: effects) { outcome = .failure(failure) }
        toc.routedWrites.applied(index)
        guard let outcome else { return }
        let waiter = inner.withLock { state -> CheckedContinuation<Void, Never>? in
            // Only this peer's own proposals, and only their first application (a retried
            // proposal can be committed twice).
            guard case .some(.none) = state.outcomes[envelope.id] else { return nil }
            state.outcomes[envelope.id] = .some(Outcome(result: outcome, index: index))
            return state.waiters.removeValue(forKey: envelope.id)
        }
        waiter?.resume()
    }

    public func snapshot() -> [UInt8] {
        let metadata = inner.withLock { $0.metadata }
        return (try? JSONValueEncoder().encodeBytes(metadata)) ?? []
    }

    public func restore(_ snapshot: [UInt8]) throws {
        let restored = try JSONValueDecoder().decode(ClusterMetadata.self, from: snapshot)
        try install(restored)
    }

    /// Replaces the catalogue with `restored` (a snapshot from the leader or from disk).
    public func install(_ restored: ClusterMetadata) throws {
        let due = inner.withLock { state -> Bool in
            state.metadata = restored
            return restored.appliedIndex > state.effectsIndex
        }
        syncQuota()
        // At start-up libraft restores its last snapshot, which is older than what the disk holds:
        // then only the pure state is rebuilt.
        if due {
            _ = bringStorage(to: restored)
            inner.withLock { $0.snapshotsRestored += 1 }
            logger.info("Installed a consensus snapshot", metadata: ["index": "\(restored.appliedIndex)",
                                                                     "collections": "\(restored.collections.count)"])
        }
        toc.routedWrites.applied(restored.appliedIndex)
    }

    /// A cluster's quotas are the catalogue's, whichever entry or snapshot brought them (a single
    /// node's are set through its `quota.json`).
    private func syncQuota() {
        guard appliedPath != nil, let quota = toc.quota else { return }
        quota.configure(metadata.quota)
    }

    /// One reconciliation at a time: the engine's, or a retry's.
    private let reconciling = Mutex(())

    /// Brings the storage to the catalogue again when it could not take a change (its disk was
    /// full), so it catches up by itself once there is room; nothing when it is in step.
    public func retryStorageEffects(every interval: Duration = .seconds(2)) async {
        // Every `interval` at most, and not while the disk refuses writes (it would fail the same way).
        let now = ContinuousClock.now
        guard inner.withLock({ state in
            guard state.effectsFailed, state.lastRetry.map({ now - $0 >= interval }) ?? true else { return false }
            state.lastRetry = now
            return true
        }), toc.space?.admit() == nil else { return }
        // It blocks its thread as the engine's apply does: not one of the tasks' threads. The
        // catalogue is read under the lock, so it is never older than what the engine applied.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.reconciling.withLock { _ in
                    if let state = self.inner.withLock({ $0.effectsFailed ? $0.metadata : nil }) { _ = self.reconcileNow(to: state) }
                }
                done.resume()
            }
        }
    }

    /// Runs the table of contents' reconciliation on the engine's thread (blocking it: metadata
    /// changes are rare and quick) and records how far the disk got. Returns the failure, if any.
    private func bringStorage(to state: ClusterMetadata) -> StorageError? {
        reconciling.withLock { _ in reconcileNow(to: state) }
    }

    private func reconcileNow(to state: ClusterMetadata) -> StorageError? {
        // A catalogue older than what the storage already holds is never brought back.
        if inner.withLock({ state.appliedIndex < $0.effectsIndex }) { return nil }
        let done = DispatchSemaphore(value: 0)
        let toc = self.toc
        let result = Mutex<StorageError?>(nil)
        Task.detached {
            do throws(StorageError) {
                try await toc.reconcile(with: state)
            } catch {
                result.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = result.withLock({ $0 }) {
            let first = inner.withLock { state in defer { state.effectsFailed = true }; return !state.effectsFailed }
            if first {
                logger.error("Could not apply cluster metadata to local storage; it is tried again until it applies",
                             metadata: ["index": "\(state.appliedIndex)", "error": "\(error)"])
            }
            return error
        }
        if inner.withLock({ state in defer { state.effectsFailed = false }; return state.effectsFailed }) {
            logger.info("Applied cluster metadata to local storage after an earlier failure", metadata: ["index": "\(state.appliedIndex)"])
        }
        guard let appliedPath else {
            inner.withLock { $0.effectsIndex = max($0.effectsIndex, state.appliedIndex) }
            return nil
        }
        do {
            try disk.writeFileAtomically(appliedPath, try JSONValueEncoder().encodeBytes(AppliedRecord(index: state.appliedIndex)))
            inner.withLock { $0.effectsIndex = max($0.effectsIndex, state.appliedIndex) }
        } catch {
            logger.error("Could not record the applied consensus index", metadata: ["error": "\(error)"])
        }
        return nil
    }

    private struct AppliedRecord: Codable {
        var index: UInt64
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, giving up at `deadline` (the body is cancelled).
func withDeadline<T: Sendable, E: Error>(_ deadline: ContinuousClock.Instant,
                                         _ body: @escaping @Sendable () async throws(E) -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(until: deadline, clock: .continuous)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
        return value
    }
}

extension ConsensusManager: ReplicaFailureReporter {
    /// Proposes `Dead` for a replica that failed a write. A refusal (the state moved on, or it is the
    /// last active replica) or no quorum is logged; the collection reports again later.
    public func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?) async {
        do {
            _ = try await propose(.setReplicaState(collection: collection, shard: shard, peer: peer, state: .dead, from: from),
                                  timeout: .seconds(10))
            logger.warning("Marked a replica that failed a write as Dead",
                           metadata: ["collection": "\(collection)", "shard": "\(shard)", "peer": "\(peer)"])
        } catch {
            logger.warning("Could not mark a failed replica as Dead",
                           metadata: ["collection": "\(collection)", "shard": "\(shard)", "peer": "\(peer)", "error": "\(error)"])
        }
    }
}

extension ConsensusManager {
    /// Proposes the state changes this peer asks for its own replicas (see
    /// ``ClusterMetadata/ownReplicaChanges(peer:listener:)``), one after another. A refusal (the
    /// state moved on) or no quorum is logged; the next call asks again.
    public func settleOwnReplicaStates(listener: Bool) async {
        for change in metadata.ownReplicaChanges(peer: peerId, listener: listener) {
            // Only replicas this peer has created: the catalogue can be ahead of the disk.
            guard case .setReplicaState(let name, let shard, _, _, _) = change, await toc.holds(name, shard: shard) else { continue }
            do {
                _ = try await propose(change, timeout: .seconds(5))
            } catch {
                logger.info("Could not change the state of a local replica", metadata: ["change": "\(change)", "error": "\(error)"])
            }
        }
    }
}
