import DiskIO
public import QuiverJSON
public import QuiverModel
public import Storage

/// What the service needs of a running cluster; the server wires the consensus engine and the p2p
/// network behind it. `nil` on a single node.
public protocol ClusterControl: Sendable {
    func status() -> ClusterDescription
    /// Removes peer `id` from consensus (through the leader).
    func removePeer(_ id: UInt64) async throws(StorageError)
    /// Installs the leader's metadata snapshot on this peer.
    func recover() async throws(StorageError)
    /// True once this peer has applied everything the leader has committed.
    func isReady() async -> Bool
    /// Waits (at most `timeout`) until the other reachable peers have applied log entry `index`.
    func awaitPeers(applying index: UInt64, timeout: Duration) async
    /// False while calls to `peer` have been failing.
    func isResponsive(_ peer: UInt64) -> Bool
    /// True on a peer started with `storage.node_type: Listener`.
    var isListener: Bool { get }
    /// Peer `id`'s usage of the resources the quotas limit.
    func quotaUsage(of id: UInt64) async throws(StorageError) -> PeerQuotaUsage
}

extension QuiverService {
    /// Metadata changes wait at most this long when the request gives no `timeout`.
    static let defaultConsensusTimeout: Duration = .seconds(30)

    public func clusterStatus() -> ClusterStatus {
        cluster.map { .enabled($0.status()) } ?? .disabled
    }

    /// `DELETE /cluster/peer/{id}`. With `drain`, the peer's replicas are first moved to the
    /// other peers (through the leader's transfers), waiting at most `timeout` (10 minutes by
    /// default) for the peer to hold none; the drain goes on when the wait times out.
    public func removePeer(_ id: UInt64, force: Bool, drain: Bool = false, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        guard let cluster else { throw .storage(.standaloneMode) }
        guard cluster.status().peers["\(id)"] != nil else {
            throw .storage(.notFound("Peer \(id) is not a member of the cluster"))
        }
        func replicasOn() -> Int {
            consensus.metadata.shards.values.reduce(0) { $0 + $1.count { $0.peers.contains(id) } }
        }
        if drain && !force && replicasOn() > 0 {
            guard cluster.status().peers.count > 1 else {
                throw .storage(.badRequest("Cannot drain peer \(id): there is no other peer to move its shards to"))
            }
            _ = try await propose(.drainPeer(peer: id, draining: true), timeout: nil)
            let deadline = ContinuousClock.now + (timeout ?? .seconds(600))
            while replicasOn() > 0 {
                guard ContinuousClock.now < deadline, !Task.isCancelled else {
                    throw .storage(.timeout("Peer \(id) still holds \(replicasOn()) replicas; they go on moving to other peers"))
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let holdsShards = replicasOn() > 0
        if !force && holdsShards {
            throw .storage(.badRequest("Cannot remove peer \(id) as there are shards on it"))
        }
        // Its replicas leave the shard map first, so writes go to the remaining replicas.
        if holdsShards { _ = try await propose(.removePeerReplicas(peer: id), timeout: nil) }
        do {
            try await cluster.removePeer(id)
        } catch {
            throw .storage(error)
        }
        // A shard placed on it meanwhile loses that replica too.
        if replicasOn() > 0 { _ = try await propose(.removePeerReplicas(peer: id), timeout: nil) }
        if consensus.metadata.drainingPeers.contains(id) { _ = try? await propose(.drainPeer(peer: id, draining: false), timeout: nil) }
        return true
    }

    public func recoverPeer() async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        guard let cluster else { throw .storage(.standaloneMode) }
        do {
            try await cluster.recover()
        } catch {
            throw .storage(error)
        }
        return true
    }

    public func isReady() async -> Bool {
        await cluster?.isReady() ?? true
    }

    /// Why writes that add data are refused now (the storage's disk is nearly full), nil when they
    /// are not.
    public nonisolated var writeRefusal: String? { toc.space?.refusal }

    /// True on a cluster peer started with `storage.node_type: Listener`.
    var isListener: Bool { cluster?.isListener ?? false }

    // MARK: Cluster metadata keys

    public func metadataKeys() throws(ServiceError) -> [String] {
        try Access.requireGlobal(manage: false)
        guard cluster != nil else { throw .storage(.standaloneMode) }
        return consensus.metadata.keys.keys.sorted()
    }

    public func metadataKey(_ key: String) throws(ServiceError) -> JSONValue {
        try Access.requireGlobal(manage: false)
        guard cluster != nil else { throw .storage(.standaloneMode) }
        return consensus.metadata.keys[key] ?? .null
    }

    public func setMetadataKey(_ key: String, _ value: JSONValue, timeout: Duration?) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        guard cluster != nil else { throw .storage(.standaloneMode) }
        _ = try await propose(.setMetadataKey(key: key, value: value), timeout: timeout)
        return true
    }

    /// Waits until every peer has activated its new replicas of the `shards` of collection `name`,
    /// as Qdrant waits before answering a create: then a write right after the answer finds a
    /// source of truth. This peer activates its own at once; the wait for the others is bounded by
    /// the request's `timeout` (at most 10 s), and a peer that does not answer keeps its replica
    /// `Initializing` without holding the answer back.
    func awaitActivation(of name: String, shards: (ShardInfo) -> Bool, since started: ContinuousClock.Instant, timeout: Duration?) async {
        await consensus.settleOwnReplicaStates(listener: isListener)
        guard let cluster else { return }
        let deadline = started + min(timeout ?? Self.defaultConsensusTimeout, .seconds(10))
        while ContinuousClock.now < deadline {
            let layout = consensus.metadata.shards[name] ?? []
            let waiting = layout.contains { shard in
                shards(shard) && shard.peers.contains { shard.state(of: $0) == .initializing && cluster.isResponsive($0) }
            }
            guard waiting else { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Other peers see the activations too before the next request reaches them.
        await cluster.awaitPeers(applying: consensus.metadata.appliedIndex, timeout: .seconds(2))
    }

    /// Proposes a metadata change through consensus and waits until it is applied on this peer, then
    /// (briefly, as Qdrant waits for a new collection's shards) until the other reachable peers have
    /// applied it too, so that the next request to any of them sees it.
    func propose(_ operation: MetadataOperation, timeout: Duration?) async throws(ServiceError) -> Bool {
        let started = ContinuousClock.now
        let limit = timeout ?? Self.defaultConsensusTimeout
        let outcome: (result: Bool, index: UInt64)
        do {
            outcome = try await consensus.proposeAndLocate(operation, timeout: limit)
        } catch {
            throw .storage(error)
        }
        let left = limit - (ContinuousClock.now - started)
        if let cluster, left > .zero { await cluster.awaitPeers(applying: outcome.index, timeout: min(left, .seconds(10))) }
        return outcome.result
    }
}
