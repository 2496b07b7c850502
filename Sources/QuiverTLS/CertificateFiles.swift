public import NIOCertificateReloading
public import NIOSSL
import Foundation
import Synchronization

/// The `tls` section of the configuration: the node's certificate chain and private key (PEM), the
/// certificate authority that signs peers' and clients' certificates, and how often the first two
/// are read again.
public struct TLSFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public var caCert: String?
    /// `tls.cert_ttl`: a handshake this long after the files were last read reads them again, so a
    /// renewed certificate is served without a restart. nil: read once.
    public var certTTL: Duration?

    public init(cert: String, key: String, caCert: String? = nil, certTTL: Duration? = .seconds(3600)) {
        self.cert = cert
        self.key = key
        self.caCert = caCert
        self.certTTL = certTTL
    }
}

/// A certificate file that cannot be used; the message names the file.
public struct TLSFileError: Error, CustomStringConvertible {
    public let description: String
}

/// The node's certificate and key, shared by every listener and by the p2p client. They are read
/// when the node starts (a missing or unusable file stops it) and again on the first handshake once
/// `certTTL` has passed; a read that fails then keeps the certificate in use and logs why.
public final class CertificateFiles: CertificateReloader, Sendable {
    public let files: TLSFiles
    private let now: @Sendable () -> ContinuousClock.Instant
    private let onReloadFailure: @Sendable (String) -> Void

    private struct Loaded {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var readAt: ContinuousClock.Instant
    }
    private let loaded: Mutex<Loaded>

    public init(files: TLSFiles, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
                onReloadFailure: @escaping @Sendable (String) -> Void = { _ in }) throws(TLSFileError) {
        self.files = files
        self.now = now
        self.onReloadFailure = onReloadFailure
        let (chain, key) = try Self.read(files)
        loaded = Mutex(Loaded(chain: chain, key: key, readAt: now()))
        if let ca = files.caCert { _ = try Self.certificates(ca, what: "tls.ca_cert") }
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        refreshIfStale()
        let (chain, key) = loaded.withLock { ($0.chain, $0.key) }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        return override
    }

    private func refreshIfStale() {
        guard let ttl = files.certTTL else { return }
        let current = now()
        let due = loaded.withLock { state -> Bool in
            guard current - state.readAt >= ttl else { return false }
            state.readAt = current  // one reader per period; the others keep the current pair
            return true
        }
        guard due else { return }
        do {
            let (chain, key) = try Self.read(files)
            loaded.withLock { $0.chain = chain; $0.key = key }
        } catch {
            onReloadFailure("\(error)")
        }
    }

    /// The certificates of `tls.ca_cert`, as trust roots; nil when none is configured.
    public func trustRoots() throws(TLSFileError) -> NIOSSLTrustRoots? {
        guard let ca = files.caCert else { return nil }
        return .certificates(try Self.certificates(ca, what: "tls.ca_cert"))
    }

    /// A server's TLS for a listener offering `alpn`; with `verifyClients`, a client must present a
    /// certificate that `tls.ca_cert` signed, or the handshake fails.
    public func serverConfiguration(alpn: [String], verifyClients: Bool) throws(TLSFileError) -> TLSConfiguration {
        let (chain, key) = loaded.withLock { ($0.chain, $0.key) }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = alpn
        configuration.minimumTLSVersion = .tlsv12
        if verifyClients {
            guard let roots = try trustRoots() else {
                throw TLSFileError(description: "tls.ca_cert is required to verify client certificates")
            }
            configuration.trustRoots = roots
            configuration.certificateVerification = .noHostnameVerification
        }
        configuration.setCertificateReloader(self)
        return configuration
    }

    public func serverContext(alpn: [String], verifyClients: Bool) throws(TLSFileError) -> NIOSSLContext {
        let configuration = try serverConfiguration(alpn: alpn, verifyClients: verifyClients)
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFileError(description: "cannot use tls.cert and tls.key: \(error)")
        }
    }

    static func read(_ files: TLSFiles) throws(TLSFileError) -> ([NIOSSLCertificate], NIOSSLPrivateKey) {
        let chain = try certificates(files.cert, what: "tls.cert")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: try bytes(files.key, what: "tls.key"), format: .pem)
        } catch let error as TLSFileError {
            throw error
        } catch {
            throw TLSFileError(description: "tls.key: \(files.key) holds no PEM private key (\(error))")
        }
        // A key that does not belong to the certificate would fail every handshake: refuse it here.
        do {
            var probe = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            probe.minimumTLSVersion = .tlsv12
            _ = try NIOSSLContext(configuration: probe)
        } catch {
            throw TLSFileError(description: "tls.key: \(files.key) is not the private key of the certificate in \(files.cert) (\(error))")
        }
        return (chain, key)
    }

    static func certificates(_ path: String, what: String) throws(TLSFileError) -> [NIOSSLCertificate] {
        let pem = try bytes(path, what: what)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            throw TLSFileError(description: "\(what): \(path) holds no PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw TLSFileError(description: "\(what): \(path) holds no PEM certificate") }
        return chain
    }

    private static func bytes(_ path: String, what: String) throws(TLSFileError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSFileError(description: "\(what): cannot read \(path)")
        }
        return Array(data)
    }
}
