import GRPCCore
import QuiverService
import GRPCNIOTransportHTTP2Posix
public import QuiverTLS

/// How peers trust each other on the p2p port.
///
/// - `certificates` (`cluster.p2p.enable_tls`): every connection is mutual TLS. A peer's server
///   asks for a client certificate and refuses one that `tls.ca_cert` did not sign; a peer's client
///   presents the node's certificate and checks the server's against the CA and the address it
///   dialled (the name or IP in the peer URI must be in the certificate).
/// - `secret` (`service.api_key`): sent as `api-key` with every call to a peer.
/// - `enforced` (`service.enforce_internal_auth`): calls that do not carry the secret are refused
///   with `UNAUTHENTICATED`, so a process that reaches the port without it cannot write.
public struct PeerSecurity: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public var certificates: CertificateFiles?
    public var secret: String?
    public var enforced: Bool

    public init(certificates: CertificateFiles? = nil, secret: String? = nil, enforced: Bool = false) {
        self.certificates = certificates
        self.secret = secret
        self.enforced = enforced
    }

    /// Never the secret itself: configurations get logged.
    public var description: String { "PeerSecurity(tls: \(certificates != nil), secret: \(secret != nil), enforced: \(enforced))" }
    public var debugDescription: String { description }

    /// The scheme of this peer's URIs.
    public var scheme: String { certificates == nil ? "http" : "https" }

    static let secretKey = "api-key"

    func serverTransportSecurity() -> HTTP2ServerTransport.Posix.TransportSecurity {
        guard let certificates, let ca = certificates.files.caCert else { return .plaintext }
        return .mTLS(certificateChain: [.file(path: certificates.files.cert, format: .pem)],
                     privateKey: .file(path: certificates.files.key, format: .pem)) {
            $0.trustRoots = .certificates([.file(path: ca, format: .pem)])
            $0.clientCertificateVerification = .noHostnameVerification
            $0.certificateReloader = certificates
        }
    }

    func clientTransportSecurity() -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard let certificates, let ca = certificates.files.caCert else { return .plaintext }
        return .mTLS(certificateChain: [.file(path: certificates.files.cert, format: .pem)],
                     privateKey: .file(path: certificates.files.key, format: .pem)) {
            $0.trustRoots = .certificates([.file(path: ca, format: .pem)])
            $0.serverCertificateVerification = .fullVerification
            $0.certificateReloader = certificates
        }
    }

    var clientInterceptors: [any ClientInterceptor] { secret.map { [SecretSender(secret: $0)] } ?? [] }

    var serverInterceptors: [any ServerInterceptor] {
        guard enforced, let secret else { return [] }
        return [SecretCheck(keys: APIKeys(apiKey: secret))]
    }
}

/// Adds the cluster's secret to every call this peer makes.
struct SecretSender: ClientInterceptor {
    let secret: String

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>, context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.replaceOrAddString(secret, forKey: PeerSecurity.secretKey)
        return try await next(request, context)
    }
}

/// Refuses calls that do not carry the cluster's secret, checked as the public APIs check a key
/// (`APIKeys.grant`: constant time, Qdrant's messages).
struct SecretCheck: ServerInterceptor {
    let keys: APIKeys

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let presented = request.metadata[stringValues: PeerSecurity.secretKey].first(where: { _ in true })
        if case .failure(let refusal) = keys.grant(apiKey: presented, authorization: nil) {
            throw RPCError(code: .unauthenticated, message: refusal.description)
        }
        return try await next(request, context)
    }
}
