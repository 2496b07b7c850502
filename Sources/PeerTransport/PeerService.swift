public import Consensus
import Foundation
import GRPCNIOTransportHTTP2Posix
public import GRPCCore
import Logging
import QuiverModel
public import Storage

/// The p2p gRPC service that peers call on each other (`cluster.p2p.port`): raft streams, proposals
/// forwarded to the leader, joining and leaving, status and commit waits, metadata snapshots.
public struct PeerService: RegistrableRPCService {
    let engine: RaftEngine
    let manager: ConsensusManager
    let network: PeerNetwork
    let logger: Logger

    public init(engine: RaftEngine, manager: ConsensusManager, network: PeerNetwork, logger: Logger) {
        self.engine = engine
        self.manager = manager
        self.network = network
        self.logger = logger
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let engine = engine
        router.registerHandler(forMethod: PeerRPC.raftStream, deserializer: RawCoder(), serializer: RawCoder()) { request, _ in
            guard let id = request.metadata[stringValues: PeerRPC.peerIdKey].first(where: { _ in true }).flatMap({ UInt64($0) }),
                  let address = request.metadata[stringValues: PeerRPC.peerAddressKey].first(where: { _ in true }) else {
                return StreamingServerResponse(error: RPCError(code: .invalidArgument, message: "raft stream without peer id"))
            }
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                return StreamingServerResponse(error: RPCError(code: .resourceExhausted, message: "socketpair failed"))
            }
            engine.accept(peer: id, address: address, fd: pair[0])
            let bridge = StreamBridge(fd: pair[1])
            return StreamingServerResponse { writer in
                async let inbound: Void = bridge.drain(request.messages)
                for await chunk in bridge.chunks { try await writer.write(chunk) }
                bridge.shutdown()
                await inbound
                return [:]
            }
        }
        unary(&router, PeerRPC.propose, RawCoder(), JSONCoder<IndexMessage>()) { entry, _ in
            IndexMessage(index: try await proposeHere(entry))
        }
        unary(&router, PeerRPC.join, JSONCoder<JoinRequest>(), JSONCoder<JoinResponse>()) { request, context in
            try await join(request, remotePeer: context.remotePeer)
        }
        unary(&router, PeerRPC.removePeer, JSONCoder<PeerIdMessage>(), JSONCoder<Empty>()) { request, _ in
            try await removeThroughLeader(request.peerId)
            return Empty()
        }
        unary(&router, PeerRPC.whoIs, JSONCoder<PeerIdMessage>(), JSONCoder<WhoIsResponse>()) { request, _ in
            WhoIsResponse(uri: engine.status.member(request.peerId)?.address)
        }
        unary(&router, PeerRPC.status, JSONCoder<Empty>(), JSONCoder<StatusResponse>()) { _, _ in
            let status = engine.status
            return StatusResponse(term: status.term, commit: status.commit, applied: status.applied, leader: status.leader)
        }
        unary(&router, PeerRPC.waitCommit, JSONCoder<WaitCommitRequest>(), JSONCoder<IndexMessage>()) { [manager] request, _ in
            _ = await manager.waitApplied(request.index, deadline: .now + .milliseconds(Int64(min(request.timeoutMs, 60_000))))
            return IndexMessage(index: manager.metadata.appliedIndex)
        }
        unary(&router, PeerRPC.quotaUsage, JSONCoder<Empty>(), JSONCoder<PeerQuotaUsage>()) { [manager] _, _ in
            manager.toc.quota?.peerUsage() ?? PeerQuotaUsage(exceeded: false, usage: QuotaUsage(residentMemoryPercent: nil, diskUsagePercent: nil))
        }
        unary(&router, PeerRPC.metadataSnapshot, RawCoder(), RawCoder()) { [manager] _, _ in
            manager.snapshot()
        }
        registerShardMethods(with: &router)
        registerSnapshotChunks(with: &router)
    }

    /// Registers a unary handler whose StorageError or ConsensusError becomes the call's status.
    func unary<Transport: ServerTransport, Request: Sendable, Response: Sendable>(
        _ router: inout RPCRouter<Transport>, _ method: MethodDescriptor,
        _ deserializer: some MessageDeserializer<Request>, _ serializer: some MessageSerializer<Response>,
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        router.registerHandler(forMethod: method, deserializer: deserializer, serializer: serializer) { request, context in
            let single = try await ServerRequest(stream: request)
            do {
                return StreamingServerResponse(single: ServerResponse(message: try await body(single.message, context)))
            } catch let error as StorageError {
                return StreamingServerResponse(error: PeerErrors.rpcError(error))
            } catch let error as ConsensusError {
                return StreamingServerResponse(error: PeerErrors.rpcError(error))
            }
        }
    }

    /// A proposal forwarded by a follower: only the leader takes it.
    private func proposeHere(_ entry: [UInt8]) async throws -> UInt64 {
        guard engine.status.role == .leader else { throw ConsensusError.notLeader(engine.status.leader) }
        return try await engine.propose(entry)
    }

    /// Removes peer `id` from the consensus configuration: here on the leader, else by asking it.
    public func removeThroughLeader(_ id: UInt64) async throws {
        let status = engine.status
        guard status.role == .leader else {
            guard let address = status.leaderAddress else { throw ConsensusError.notLeader(nil) }
            try await network.removePeer(id, on: address)
            return
        }
        try await engine.remove(id: id)
        logger.info("Removed peer from the cluster", metadata: ["peer": "\(id)"])
    }

    /// Adds a new peer as a learner (on the leader; other peers pass the request on), then promotes
    /// it to voter in the background once libraft has caught it up.
    private func join(_ request: JoinRequest, remotePeer: String) async throws -> JoinResponse {
        let uri = request.uri ?? Self.uri(fromRemotePeer: remotePeer, port: request.p2pPort, scheme: network.security.scheme)
        guard let uri else { throw StorageError.badInput("cannot tell the joining peer's address from \(remotePeer); start it with --uri") }
        let status = engine.status
        guard status.role == .leader else {
            guard let address = status.leaderAddress else {
                throw StorageError.unavailable("this peer knows no consensus leader to add the new peer; try again")
            }
            var forwarded = request
            forwarded.uri = uri
            return try await network.join(forwardTo: address, forwarded)
        }
        if let holder = status.members.first(where: { $0.address == uri && $0.id != request.peerId }) {
            throw StorageError.badRequest("""
                URI \(uri) already belongs to peer \(holder.id) of this cluster. If that peer lost its storage, \
                remove it with DELETE /cluster/peer/\(holder.id)?force=true on any peer, then start this one again \
                with --bootstrap.
                """)
        }
        try await engine.addLearner(id: request.peerId, address: uri)
        logger.info("Peer joined as a learner", metadata: ["peer": "\(request.peerId)", "uri": "\(uri)"])
        let engine = engine
        let logger = logger
        Task.detached {
            for attempt in 0..<60 {
                do {
                    try await engine.promote(id: request.peerId)
                    logger.info("Peer promoted to voter", metadata: ["peer": "\(request.peerId)"])
                    return
                } catch {
                    if engine.status.member(request.peerId) == nil || engine.status.role != .leader { return }
                    logger.debug("Promotion not done yet", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
        return JoinResponse(uri: uri, leader: status.peerId)
    }

    /// `ipv4:10.0.0.5:51234` (grpc-swift's form of the caller's address) → `http://10.0.0.5:<port>`.
    static func uri(fromRemotePeer remote: String, port: Int, scheme: String = "http") -> String? {
        if remote.hasPrefix("ipv4:") {
            let rest = remote.dropFirst(5)
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            return "\(scheme)://\(rest[..<colon]):\(port)"
        }
        if remote.hasPrefix("ipv6:[") {
            guard let close = remote.firstIndex(of: "]") else { return nil }
            return "\(scheme)://\(remote[remote.index(remote.startIndex, offsetBy: 5)...close]):\(port)"
        }
        return nil
    }
}

/// The p2p port's gRPC server, as secure as the network's `PeerSecurity` says.
public final class PeerServer: Sendable {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>

    public init(host: String, port: Int, service: PeerService) {
        let security = service.network.security
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: security.serverTransportSecurity())
        server = GRPCServer(transport: transport, services: [service], interceptors: security.serverInterceptors)
    }

    /// Serves until ``stop()``.
    public func serve() async throws {
        try await server.serve()
    }

    /// The port actually bound (useful with port 0), once listening.
    public func listeningPort() async throws -> Int? {
        try await server.listeningAddress?.ipv4?.port
    }

    public func stop() {
        server.beginGracefulShutdown()
    }
}
