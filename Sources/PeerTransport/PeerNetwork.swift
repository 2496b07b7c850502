public import Consensus
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
public import QuiverModel
public import Storage
import Synchronization

/// This peer's side of the p2p port as a client: one pooled gRPC connection per peer URI
/// (reconnecting with backoff), raft streams bridged to libraft's sockets, and the control calls
/// (forwarded proposals, join, status) with the configured timeouts.
public final class PeerNetwork: ConsensusPeers, @unchecked Sendable {
    public struct Timeouts: Sendable {
        /// `cluster.grpc_timeout_ms`: a call that does not answer in time fails.
        public var call: Duration
        /// `cluster.connection_timeout_ms`, added to the time a join may take: the first call to reach
        /// the cluster.
        public var connect: Duration

        public init(call: Duration, connect: Duration) {
            self.call = call
            self.connect = connect
        }
    }

    public let peerId: UInt64
    private let ownURI: Mutex<String>
    let timeouts: Timeouts
    let security: PeerSecurity
    private let logger: Logger
    private let clients = Mutex<[String: GRPCClient<HTTP2ClientTransport.Posix>]>([:])
    private let failures = Mutex<[String: SendFailure]>([:])
    private let closed = Atomic<Bool>(false)
    private let resolver = Mutex<@Sendable (UInt64) -> String?>({ _ in nil })

    /// Failed attempts to reach a peer since the last success (`/cluster` `message_send_failures`).
    public struct SendFailure: Sendable {
        public var count: Int
        public var latestError: String
        public var latestErrorTimestamp: Date
    }

    public init(peerId: UInt64, uri: String, timeouts: Timeouts, security: PeerSecurity = PeerSecurity(), logger: Logger) {
        self.peerId = peerId
        ownURI = Mutex(uri)
        self.timeouts = timeouts
        self.security = security
        self.logger = logger
    }

    public var uri: String {
        get { ownURI.withLock { $0 } }
        set { ownURI.withLock { $0 = newValue } }
    }

    public var sendFailures: [String: SendFailure] { failures.withLock { $0 } }

    /// How peer ids become addresses (the consensus configuration); set once consensus exists.
    public func resolveAddresses(with lookup: @escaping @Sendable (UInt64) -> String?) {
        resolver.withLock { $0 = lookup }
    }

    func resolve(_ peer: UInt64) -> String? {
        resolver.withLock { $0 }(peer)
    }

    // MARK: Connections

    func client(for uri: String) throws(StorageError) -> GRPCClient<HTTP2ClientTransport.Posix> {
        if let existing = clients.withLock({ $0[uri] }) { return existing }
        guard !closed.load(ordering: .acquiring) else { throw .unavailable("the p2p client is shut down") }
        guard let components = URLComponents(string: uri), let host = components.host, let port = components.port else {
            throw .badInput("invalid peer URI \(uri)")
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff = .init(initial: .milliseconds(100), max: .seconds(2), multiplier: 1.6, jitter: 0.2)
        config.connection.maxIdleTime = .seconds(300)
        let transport: HTTP2ClientTransport.Posix
        do {
            // An address dialled as such, not as a name: TLS sends no IP literal as the server name
            // and checks the certificate's IP entries instead.
            let security = security.clientTransportSecurity()
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 4 && parts.allSatisfy({ UInt8($0) != nil }) {
                transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: host, port: port), transportSecurity: security, config: config)
            } else if host.contains(":") {
                let literal = String(host.trimmingPrefix("[").prefix { $0 != "]" })
                transport = try HTTP2ClientTransport.Posix(target: .ipv6(host: literal, port: port), transportSecurity: security, config: config)
            } else {
                transport = try HTTP2ClientTransport.Posix(target: .dns(host: host, port: port), transportSecurity: security, config: config)
            }
        } catch {
            throw .serviceError("cannot create a p2p client for \(uri): \(error)")
        }
        let client = GRPCClient(transport: transport, interceptors: security.clientInterceptors)
        let (chosen, isNew) = clients.withLock { pool -> (GRPCClient<HTTP2ClientTransport.Posix>, Bool) in
            if let raced = pool[uri] { return (raced, false) }
            pool[uri] = client
            return (client, true)
        }
        if isNew {
            Task.detached { try? await client.runConnections() }
        }
        return chosen
    }

    func noteFailure(_ uri: String, _ error: any Error) {
        failures.withLock { all in
            var entry = all[uri] ?? SendFailure(count: 0, latestError: "", latestErrorTimestamp: Date())
            entry.count += 1
            entry.latestError = "\(error)"
            entry.latestErrorTimestamp = Date()
            all[uri] = entry
        }
    }

    private func noteSuccess(_ uri: String) {
        failures.withLock { _ = $0.removeValue(forKey: uri) }
    }

    public func shutdown() {
        closed.store(true, ordering: .releasing)
        let all = clients.withLock { pool in
            defer { pool = [:] }
            return Array(pool.values)
        }
        for client in all { client.beginGracefulShutdown() }
    }

    // MARK: Raft streams

    /// libraft's connector: opens a `RaftStream` call to `address` and bridges `fd` to it. When the
    /// call ends, the socket closes and libraft reconnects after its retry delay.
    public func connectRaft(peer: UInt64, address: String, fd: Int32) {
        let bridge = StreamBridge(fd: fd)
        let ownId = peerId
        let ownAddress = uri
        Task.detached { [self] in
            do {
                let client = try client(for: address)
                let metadata: Metadata = [PeerRPC.peerIdKey: .string("\(ownId)"), PeerRPC.peerAddressKey: .string(ownAddress)]
                let request = StreamingClientRequest<[UInt8]>(metadata: metadata) { writer in
                    for await chunk in bridge.chunks { try await writer.write(chunk) }
                }
                try await client.bidirectionalStreaming(
                    request: request, descriptor: PeerRPC.raftStream, serializer: RawCoder(), deserializer: RawCoder(),
                    options: .defaults
                ) { response in
                    await bridge.drain(response.messages)
                }
                noteSuccess(address)
            } catch {
                noteFailure(address, error)
                logger.debug("Raft stream to peer ended", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
            bridge.shutdown()
        }
    }

    // MARK: Control calls

    private func call<Request: Codable & Sendable, Response: Codable & Sendable>(
        _ uri: String, _ method: MethodDescriptor, _ request: Request, timeout: Duration? = nil, waitForReady: Bool = true
    ) async throws(StorageError) -> Response {
        try await callRaw(uri, method, request, serializer: JSONCoder<Request>(), deserializer: JSONCoder<Response>(),
                          timeout: timeout, waitForReady: waitForReady)
    }

    /// With `waitForReady` false a call to a peer that cannot be reached fails at once instead of
    /// waiting for a connection until its timeout.
    func callRaw<Request: Sendable, Response: Sendable>(
        _ uri: String, _ method: MethodDescriptor, _ request: Request,
        serializer: some MessageSerializer<Request>, deserializer: some MessageDeserializer<Response>, timeout: Duration?,
        waitForReady: Bool = true
    ) async throws(StorageError) -> Response {
        let client = try client(for: uri)
        var options = CallOptions.defaults
        options.timeout = timeout ?? timeouts.call
        options.waitForReady = waitForReady
        do {
            let response = try await client.unary(
                request: ClientRequest(message: request), descriptor: method, serializer: serializer,
                deserializer: deserializer, options: options
            ) { try $0.message }
            noteSuccess(uri)
            return response
        } catch let error as RPCError {
            if error.code == .unavailable || error.code == .deadlineExceeded { noteFailure(uri, error) }
            throw PeerErrors.storageError(error, peer: uri)
        } catch {
            noteFailure(uri, error)
            throw .unavailable("peer \(uri) did not answer: \(error)")
        }
    }

    public func forwardProposal(_ entry: [UInt8], leader: UInt64, address: String) async throws(StorageError) -> UInt64 {
        let response: IndexMessage = try await callRaw(
            address, PeerRPC.propose, entry, serializer: RawCoder(), deserializer: JSONCoder<IndexMessage>(), timeout: .seconds(30)
        )
        return response.index
    }

    /// Asks the peer at `bootstrap` to add this peer to the cluster; returns the URI the cluster knows
    /// this peer by.
    public func join(through bootstrap: String, uri: String?, p2pPort: Int) async throws(StorageError) -> String {
        let response: JoinResponse = try await call(
            bootstrap, PeerRPC.join, JoinRequest(peerId: peerId, uri: uri, p2pPort: p2pPort), timeout: timeouts.connect + .seconds(30)
        )
        return response.uri
    }

    func join(forwardTo leader: String, _ request: JoinRequest) async throws(StorageError) -> JoinResponse {
        try await call(leader, PeerRPC.join, request, timeout: .seconds(30))
    }

    public func removePeer(_ id: UInt64, on leader: String) async throws(StorageError) {
        let _: Empty = try await call(leader, PeerRPC.removePeer, PeerIdMessage(peerId: id), timeout: .seconds(30))
    }

    public func status(of uri: String) async throws(StorageError) -> (commit: UInt64, term: UInt64) {
        let response: StatusResponse = try await call(uri, PeerRPC.status, Empty())
        return (response.commit, response.term)
    }

    /// Waits on the peer at `uri` until it has applied `index`.
    public func waitCommit(_ index: UInt64, on uri: String, timeout: Duration) async throws(StorageError) -> Bool {
        let millis = UInt64(timeout.wholeMilliseconds)
        let response: IndexMessage = try await call(
            uri, PeerRPC.waitCommit, WaitCommitRequest(index: index, timeoutMs: millis), timeout: timeout + timeouts.call,
            waitForReady: false
        )
        return response.index >= index
    }

    /// The usage the peer at `uri` reports against the quotas.
    public func quotaUsage(of uri: String) async throws(StorageError) -> PeerQuotaUsage {
        try await call(uri, PeerRPC.quotaUsage, Empty())
    }

    public func metadataSnapshot(from uri: String) async throws(StorageError) -> [UInt8] {
        try await callRaw(uri, PeerRPC.metadataSnapshot, [], serializer: RawCoder(), deserializer: RawCoder(), timeout: .seconds(30))
    }
}

/// The one place where p2p call failures become errors of either side.
enum PeerErrors {
    /// Tells a full disk or a quota from a rate limit, both `RESOURCE_EXHAUSTED` (Qdrant's trailer).
    static let insufficientStorageKey = "qdrant-insufficient-storage"

    static func rpcError(_ error: StorageError) -> RPCError {
        switch error {
        case .unavailable(let message): RPCError(code: .unavailable, message: message)
        case .badInput(let message), .badRequest(let message): RPCError(code: .invalidArgument, message: message)
        case .alreadyExists(let message): RPCError(code: .alreadyExists, message: message)
        case .notFound(let message): RPCError(code: .notFound, message: message)
        case .standaloneMode: RPCError(code: .failedPrecondition, message: error.description)
        case .timeout(let message): RPCError(code: .deadlineExceeded, message: message)
        case .rateLimited(let message, _): RPCError(code: .resourceExhausted, message: message)
        case .forbidden(let message): RPCError(code: .permissionDenied, message: message)
        case .serviceError(let message): RPCError(code: .internalError, message: message)
        case .insufficientStorage(let message):
            RPCError(code: .resourceExhausted, message: message, metadata: [insufficientStorageKey: "1"])
        }
    }

    static func rpcError(_ error: ConsensusError) -> RPCError {
        switch error {
        case .notLeader, .leadershipLost, .shutdown, .busy: RPCError(code: .unavailable, message: error.description)
        case .failed: RPCError(code: .internalError, message: error.description)
        }
    }

    static func storageError(_ error: RPCError, peer: String) -> StorageError {
        switch error.code {
        case .unavailable, .deadlineExceeded, .cancelled: .unavailable("peer \(peer): \(error.message)")
        case .invalidArgument, .failedPrecondition: .badRequest(error.message)
        case .alreadyExists: .alreadyExists(error.message)
        case .notFound: .notFound(error.message)
        case .resourceExhausted where error.metadata[stringValues: insufficientStorageKey].contains("1"):
            .insufficientStorage("peer \(peer): \(error.message)")
        default: .serviceError("peer \(peer): \(error.message)")
        }
    }
}
