import SwiftProtobuf
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOPosix
import QuiverModel
import QuiverService
import Storage

/// Qdrant's public gRPC API (`qdrant.Qdrant`, `qdrant.Collections`, `qdrant.Points`,
/// `qdrant.Snapshots` and `grpc.health.v1.Health`) on `service.grpc_port`.
public enum GRPCAPI {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// `service.max_request_size_mb`, as for REST bodies.
        public var requestBytesMax: Int
        public var commit: String?

        public init(host: String, port: Int, requestBytesMax: Int, commit: String?) {
            self.host = host
            self.port = port
            self.requestBytesMax = requestBytesMax
            self.commit = commit
        }
    }

    /// Serves `server` until its `beginGracefulShutdown()`, its calls on the event loops that read
    /// them (`CurrentLoopExecutor`).
    public static func serve(_ server: GRPCServer<HTTP2ServerTransport.Posix>) async throws {
        try await withTaskExecutorPreference(CurrentLoopExecutor(group: MultiThreadedEventLoopGroup.singleton)) {
            try await server.serve()
        }
    }

    /// The server, not yet serving: `serve(_:)` runs it until `beginGracefulShutdown()`.
    public static func makeServer(service: QuiverService, configuration: Configuration) -> GRPCServer<HTTP2ServerTransport.Posix> {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = configuration.requestBytesMax
        config.compression.enabledAlgorithms = .all
        // Clients that ping an idle connection (keep-alive) are answered rather than sent away.
        config.connection.keepalive.clientBehavior.allowWithoutCalls = true
        config.connection.keepalive.clientBehavior.minPingIntervalWithoutCalls = .seconds(5)
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: configuration.host, port: configuration.port),
                                                   transportSecurity: .plaintext, config: config)
        let services: [any RegistrableRPCService] = [
            QdrantInfoService(commit: configuration.commit), CollectionsService(service: service), PointsService(service: service),
            SnapshotsService(service: service), HealthService(),
        ]
        return GRPCServer(transport: transport, services: services)
    }

    static func ordering(_ ordering: Qdrant_WriteOrdering?) -> WriteOrdering {
        switch ordering?.type {
        case .medium: .medium
        case .strong: .strong
        case .weak, .UNRECOGNIZED, nil: .weak
        }
    }

    static func consistency(_ consistency: Qdrant_ReadConsistency?) -> ReadConsistency {
        switch consistency?.value {
        case .type(.all): .all
        case .type(.majority): .majority
        case .type(.quorum): .quorum
        case .factor(let n): .factor(max(1, Int(clamping: n)))
        case .type(.UNRECOGNIZED), nil: .default
        }
    }

    static func duration(_ seconds: UInt64?) -> Duration? {
        seconds.map { .seconds(Int64(clamping: $0)) }
    }
}

/// Runs a service call, measuring it for the response's `time` (seconds, as Qdrant reports it), and
/// turns its error into the call's status (`ServiceError.rpcError`).
func timed<T, Response>(_ call: () async throws(ServiceError) -> T,
                        respond: (T, Double) -> Response) async throws(RPCError) -> Response {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        let result = try await call()
        return respond(result, (clock.now - start).inSeconds)
    } catch {
        throw error.rpcError
    }
}
