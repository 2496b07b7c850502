public import NIOSSL
import SwiftProtobuf
import GRPCCore
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
        /// The same keys as REST's; none set, no credential is asked for.
        public var apiKeys: APIKeys
        /// `service.enable_tls`: TLS with this context (ALPN `h2`; it may ask for client certificates).
        public var tls: NIOSSLContext?

        public init(host: String, port: Int, requestBytesMax: Int, commit: String?, apiKeys: APIKeys = APIKeys(apiKey: nil),
                    tls: NIOSSLContext? = nil) {
            self.host = host
            self.port = port
            self.requestBytesMax = requestBytesMax
            self.commit = commit
            self.apiKeys = apiKeys
            self.tls = tls
        }
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
