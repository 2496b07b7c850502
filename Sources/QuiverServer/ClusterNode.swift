import Consensus
import DiskIO
import Foundation
import Logging
import PeerTransport
import QuiverJSON
import QuiverModel
import QuiverService
import ServiceLifecycle
import Storage

/// This peer's identity, written before first use (`storage/cluster.json`, DESIGN.md §7).
struct PeerIdentity: Codable {
    var peerId: UInt64
    var uri: String?

    enum CodingKeys: String, CodingKey {
        case peerId = "peer_id", uri
    }

    /// Replaces the file atomically (temp file, fsync, rename).
    func save(to path: String, disk: any Disk) throws {
        try disk.writeFileAtomically(path, try JSONValueEncoder().encodeBytes(self))
    }
}

/// A peer in cluster mode: consensus engine, p2p server and client, and the ``ClusterControl``
/// the service uses.
final class ClusterNode: ClusterControl, @unchecked Sendable {
    let manager: ConsensusManager
    let engine: RaftEngine
    let network: PeerNetwork
    let service: PeerService
    let server: PeerServer
    let logger: Logger
    let isListener: Bool

    /// Sets up consensus for `toc` from the settings and launch options. Fails with a message that
    /// tells the operator what to do when the stored state and the options do not fit together.
    static func start(settings: Settings, options: LaunchOptions, toc: TableOfContent, disk: any Disk, security: PeerSecurity,
                      logger: Logger) async throws -> ClusterNode {
        let storagePath = toc.storagePath
        let identityPath = joinPath(storagePath, "cluster.json")
        let raftPath = joinPath(storagePath, "raft")
        let hasRaftState = ((try? disk.listDirectory(raftPath)) ?? []).contains { $0.hasPrefix("metadata") }
        var identity: PeerIdentity
        if disk.fileExists(identityPath) {
            identity = try JSONValueDecoder().decode(PeerIdentity.self, from: try disk.readFile(identityPath))
        } else {
            if hasRaftState {
                throw ConfigError("""
                    \(raftPath) holds consensus state but \(identityPath) is missing, so this peer's id is unknown. \
                    Restore the file, or remove \(raftPath) and start again with --bootstrap to join as a new peer.
                    """)
            }
            identity = PeerIdentity(peerId: UInt64.random(in: 1...(UInt64(1) << 62)), uri: options.uri)
            try identity.save(to: identityPath, disk: disk)
        }
        if let uri = options.uri, identity.uri != uri {
            identity.uri = uri
            try identity.save(to: identityPath, disk: disk)
        }

        // What to do with consensus: resume, found, join, or re-found (--reinit).
        var reinitFromScratch = false
        let mode: RaftEngine.Start
        if options.reinit {
            if hasRaftState && options.bootstrap == nil {
                mode = .recover
            } else {
                try? disk.removeItem(raftPath)
                mode = options.bootstrap == nil ? .bootstrap : .join
                reinitFromScratch = options.bootstrap == nil
            }
        } else if hasRaftState {
            mode = .bootstrap  // existing state: libraft just resumes
        } else if options.bootstrap != nil {
            mode = .join
        } else {
            mode = .bootstrap
        }
        try disk.createDirectories(raftPath)
        if identity.uri == nil && options.bootstrap == nil {
            identity.uri = "\(security.scheme)://127.0.0.1:\(settings.cluster.p2pPort)"
            logger.warning("No --uri given: this peer calls itself \(identity.uri!); other machines cannot reach that")
            try identity.save(to: identityPath, disk: disk)
        }

        let network = PeerNetwork(
            peerId: identity.peerId, uri: identity.uri ?? "",
            timeouts: .init(call: .milliseconds(settings.cluster.grpcTimeoutMs), connect: .milliseconds(settings.cluster.connectionTimeoutMs)),
            security: security, logger: Logger(label: "quiver.p2p")
        )
        // Collections open only the shards placed on this peer, so the id comes before loading.
        await toc.enableCluster(peerID: identity.peerId, network: network)
        try await toc.load()
        let manager = try ConsensusManager(toc: toc, peerId: identity.peerId, disk: disk, logger: Logger(label: "quiver.consensus"))
        var raftOptions = RaftEngine.Options()
        raftOptions.heartbeatTimeoutMs = UInt32(settings.cluster.tickPeriodMs)
        raftOptions.electionTimeoutMs = UInt32(settings.cluster.tickPeriodMs * 10)
        raftOptions.snapshotThreshold = UInt32(settings.cluster.compactWalEntries)
        raftOptions.snapshotTrailing = UInt32(max(1, settings.cluster.compactWalEntries / 2))
        let engine = try RaftEngine(directory: raftPath, peerId: identity.peerId, address: identity.uri ?? "pending",
                                    machine: manager, options: raftOptions) { peer, address, fd in
            network.connectRaft(peer: peer, address: address, fd: fd)
        }
        manager.attach(engine: engine, peers: network)
        await toc.reportReplicaFailures(to: manager)
        network.resolveAddresses { [engine] peer in engine.status.member(peer)?.address }
        let service = PeerService(engine: engine, manager: manager, network: network, logger: Logger(label: "quiver.p2p"))
        let server = PeerServer(host: settings.service.host, port: settings.cluster.p2pPort, service: service)
        let node = ClusterNode(manager: manager, engine: engine, network: network, service: service, server: server, logger: logger,
                               isListener: settings.storage.nodeType == .listener)
        do {
            let founded = try engine.start(mode)
            if founded { logger.info("Founded a new cluster", metadata: ["peer": "\(identity.peerId)", "uri": "\(identity.uri ?? "")"]) }
        } catch {
            throw ConfigError("cannot start consensus in \(raftPath): \(error)")
        }
        if reinitFromScratch {
            let state = await toc.currentMetadata()
            Task {
                _ = try? await manager.propose(.replaceState(state), timeout: .seconds(60))
                logger.info("Re-founded the cluster from this peer's collections (--reinit)")
            }
        }
        return node
    }

    private init(manager: ConsensusManager, engine: RaftEngine, network: PeerNetwork, service: PeerService, server: PeerServer,
                 logger: Logger, isListener: Bool) {
        self.isListener = isListener
        self.manager = manager
        self.engine = engine
        self.network = network
        self.service = service
        self.server = server
        self.logger = logger
    }

    /// Joins through `bootstrap` (after the p2p server listens, so the leader can reach us),
    /// retrying while the cluster is unreachable. A refusal (such as a URI that belongs to another
    /// peer) ends the process with the cluster's explanation.
    func join(through bootstrap: String, uri: String?, p2pPort: Int, identityPath: String, disk: any Disk) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        var delay = Duration.milliseconds(200)
        while true {
            do {
                let assigned = try await network.join(through: bootstrap, uri: uri, p2pPort: p2pPort)
                network.uri = assigned
                try PeerIdentity(peerId: network.peerId, uri: assigned).save(to: identityPath, disk: disk)
                logger.info("Joined the cluster", metadata: ["through": "\(bootstrap)", "uri": "\(assigned)", "peer": "\(network.peerId)"])
                return
            } catch let error as StorageError {
                guard case .unavailable = error, ContinuousClock.now < deadline else {
                    throw ConfigError("cannot join the cluster through \(bootstrap): \(error)")
                }
                logger.info("Cluster not reachable yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(3))
            }
        }
    }

    func stop() {
        server.stop()
        engine.shutdown()
        network.shutdown()
    }

    // MARK: ClusterControl

    func status() -> ClusterDescription {
        let status = engine.status
        var peers: [String: PeerInfo] = [:]
        for member in status.members { peers["\(member.id)"] = PeerInfo(uri: member.address) }
        if peers["\(status.peerId)"] == nil, !network.uri.isEmpty { peers["\(status.peerId)"] = PeerInfo(uri: network.uri) }
        let failures = network.sendFailures
        var sendFailures: [String: MessageSendErrors] = [:]
        for (uri, failure) in failures {
            sendFailures[uri] = MessageSendErrors(count: failure.count, latestError: failure.latestError,
                                                  latestErrorTimestamp: failure.latestErrorTimestamp.rfc3339)
        }
        let role: String? = switch status.role {
        case .leader, .follower, .candidate: status.role.rawValue
        case .unavailable: nil
        }
        return ClusterDescription(
            peerId: status.peerId, peers: peers,
            raftInfo: RaftInfo(term: status.term, commit: status.commit, pendingOperations: status.pendingOperations,
                               leader: status.leader, role: role, isVoter: status.isVoter),
            consensusThreadStatus: status.stopped ? .stopped : .working(lastUpdate: Date().rfc3339),
            messageSendFailures: sendFailures
        )
    }

    func removePeer(_ id: UInt64) async throws(StorageError) {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                try await service.removeThroughLeader(id)
                return
            } catch let error as ConsensusError {
                if case .busy = error {} else if case .notLeader = error {} else { throw .serviceError(error.description) }
            } catch let error as StorageError {
                if case .unavailable = error {} else { throw error }
            } catch {
                throw .serviceError("\(error)")
            }
            guard ContinuousClock.now < deadline else { throw .unavailable("no consensus leader to remove peer \(id)") }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func quotaUsage(of id: UInt64) async throws(StorageError) -> PeerQuotaUsage {
        guard let address = engine.status.member(id)?.address else { throw .notFound("Peer \(id) is not a member of the cluster") }
        return try await network.quotaUsage(of: address)
    }

    func recover() async throws(StorageError) {
        let status = engine.status
        guard status.role != .leader else { return }
        guard let address = status.leaderAddress else {
            throw .unavailable("there is no consensus leader to take a snapshot from")
        }
        let bytes = try await network.metadataSnapshot(from: address)
        do {
            try manager.restore(bytes)
        } catch {
            throw .serviceError("cannot install the leader's snapshot: \(error)")
        }
    }

    func awaitPeers(applying index: UInt64, timeout: Duration) async {
        let others = engine.status.members.filter { $0.id != network.peerId && $0.role != .spare }
        await withTaskGroup(of: Void.self) { group in
            // This peer too: its own writes on their way, routed before.
            group.addTask { [manager] in _ = await manager.waitApplied(index, deadline: .now + timeout) }
            for member in others {
                group.addTask { [network] in
                    // A peer that is down or cut off answers with an error (or not in time): the
                    // change is committed anyway, and that peer catches up when it returns.
                    _ = try? await network.waitCommit(index, on: member.address, timeout: timeout)
                }
            }
        }
    }

    func isResponsive(_ peer: UInt64) -> Bool {
        peer == network.peerId || network.isResponsive(peer)
    }

    func isReady() async -> Bool {
        let status = engine.status
        guard !status.stopped, status.members.contains(where: { $0.id == status.peerId }) else { return false }
        if status.role == .leader { return status.applied >= status.commit }
        guard let address = status.leaderAddress,
              let remote = try? await network.status(of: address) else { return false }
        return status.applied >= remote.commit
    }
}

/// Runs the p2p gRPC server inside the service group.
struct PeerServerService: Service {
    let node: ClusterNode

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await node.server.serve()
        } onGracefulShutdown: {
            node.server.stop()
        }
    }
}
