import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import QuiverService
import Synchronization

/// The listening socket of the public gRPC API and its connections: TLS when configured
/// (`NIOSSLServerHandler`, ALPN `h2`), HTTP/2 (`NIOHTTP2Handler`),
/// keep-alive and graceful shutdown (`NIOHTTP2ServerConnectionManagementHandler`), then
/// `UnaryConnection`, which runs the calls.
public final class UnaryServer: Sendable {
    private let listener: any Channel
    private let connections: Connections
    /// How long `run()` lets the calls in progress finish after `shutdown()`.
    private let grace: Duration

    /// The port it listens on (useful when configured as 0).
    public var port: Int? { listener.localAddress?.port }

    private init(listener: any Channel, connections: Connections, grace: Duration) {
        self.listener = listener
        self.connections = connections
        self.grace = grace
    }

    /// Binds `configuration.host:port`; the server accepts calls until `shutdown()`.
    public static func bind(service: QuiverService, configuration: GRPCAPI.Configuration,
                            grace: Duration = .seconds(10)) async throws -> UnaryServer {
        let group = MultiThreadedEventLoopGroup.singleton
        let methods = MethodTable(service: service, commit: configuration.commit)
        let settings = UnaryConnection.Settings(messageBytesMax: configuration.requestBytesMax, streamWindow: 4 << 20,
                                                connectionWindow: 16 << 20, executor: CurrentLoopExecutor(group: group),
                                                apiKeys: configuration.apiKeys)
        var http2 = NIOHTTP2Handler.ConnectionConfiguration()
        http2.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
            HTTP2Setting(parameter: .initialWindowSize, value: settings.streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 20),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
        ]
        // Streams refused early may still have DATA in flight: remember as many as may be open.
        http2.maximumRecentlyResetStreams = 256
        let connectionConfiguration = http2
        // No idle or age limit and no pings of the server's own (clients' pings are answered), as
        // Qdrant's server; GOAWAY, then the grace period for the calls in progress when it stops.
        let management = NIOHTTP2ServerConnectionManagementHandler.Configuration(
            maxIdleTime: nil, maxAge: nil, maxGraceTime: TimeAmount(grace), keepalive: nil)
        let connections = Connections()
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = UnaryConnection(methods: methods, settings: settings)
                    if let tls = configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOHTTP2Handler(mode: .server, frameDelegate: connection, connectionConfiguration: connectionConfiguration),
                        NIOHTTP2ServerConnectionManagementHandler(eventLoop: channel.eventLoop, configuration: management),
                        connection)
                    connections.add(channel)
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        return UnaryServer(listener: listener, connections: connections, grace: grace)
    }

    /// Serves until `shutdown()` (or cancellation), then lets the calls in progress finish, for at
    /// most the grace period, before the connections close. Each connection's management handler
    /// enforces the grace period too; the timer here is the backstop for a connection it leaves
    /// open.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await listener.closeFuture.get()
        } onCancel: {
            shutdown()
        }
        let open = connections.quiesce()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for connection in open { try? await connection.closeFuture.get() }
            }
            group.addTask { [grace] in
                try? await Task.sleep(for: grace + .seconds(1))
                for connection in open { connection.close(promise: nil) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Stops accepting connections; `run()` then winds the open ones down.
    public func shutdown() {
        listener.close(promise: nil)
    }
}

/// The open connections, to wind down when the server stops.
private final class Connections: Sendable {
    private let state = Mutex<(channels: [ObjectIdentifier: any Channel], quiescing: Bool)>(([:], false))

    /// Tracks `channel` until it closes; one accepted as the server stops is told to stop at once.
    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let quiescing = state.withLock {
            $0.channels[id] = channel
            return $0.quiescing
        }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.channels.removeValue(forKey: id) } }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// Tells every connection to stop (GOAWAY, then close once its calls are answered); the
    /// connections open at that moment.
    func quiesce() -> [any Channel] {
        let open = state.withLock {
            $0.quiescing = true
            return Array($0.channels.values)
        }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        return open
    }
}
