import Logging
import DiskIO
import Foundation
import QuiverModel
import QuiverService
import RESTServer
import ServiceLifecycle
import UnixSignals
import Storage
import Synchronization
import Consensus
import PeerTransport
import QuiverGRPCAPI
import QuiverTLS
import NIOSSL

/// Command-line choices that are not part of the configuration file.
public struct LaunchOptions: Sendable {
    public var uri: String?
    public var bootstrap: String?
    public var reinit = false
    public var disableTelemetry = false
    /// Build commit, reported by `GET /`.
    public var commit: String?
    /// `--snapshot PATH:COLLECTION`: collections to recover before serving.
    public var snapshots: [(path: String, collection: String)] = []
    /// `--storage-snapshot PATH`: a full snapshot to recover before serving.
    public var storageSnapshot: String?
    /// `--force-snapshot`: those recoveries replace collections that exist.
    public var forceSnapshot = false

    public init() {}
}

/// One Quiver process: loads storage, then runs the REST and gRPC servers (and in a cluster the p2p
/// server, consensus and transfers) and the optimizers as services in one group that stops
/// gracefully on SIGTERM or SIGINT.
public enum QuiverNode {
    /// Sets up swift-log with `filter`; call once, first thing in the process.
    public static func bootstrapLogging(_ filter: LogFilter) {
        LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: filter.level(for: label)) }
    }

    /// `--snapshot` and `--storage-snapshot`: recovers before anything is served. A collection or
    /// alias that exists stops the start unless `--force-snapshot` (which replaces the collection,
    /// configuration included, or moves the alias), as does a snapshot that cannot be recovered.
    static func recoverStartupSnapshots(_ options: LaunchOptions, service: QuiverService, logger: Logger) async throws {
        var items = options.snapshots
        var aliases: [String: String] = [:]
        if let full = options.storageSnapshot {
            do {
                let unpacked = try await service.unpackFullSnapshot(full)
                items += unpacked.collections
                aliases = unpacked.aliases
            } catch {
                throw ConfigError("--storage-snapshot \(full): \(error)")
            }
        }
        for (path, collection) in items {
            if await service.toc.collectionExists(collection) && !options.forceSnapshot {
                throw ConfigError("Collection \(collection) already exists. Use --force-snapshot to overwrite it.")
            }
            do {
                // In a cluster the snapshot, asked for at start-up, is the source of truth for the shards it holds.
                _ = try await service.recover(collection, from: path, checksum: nil, priority: .snapshot, replacingConfiguration: true)
                logger.info("Recovered collection \(collection) from \(path)")
            } catch {
                throw ConfigError("cannot recover collection \(collection) from \(path): \(error)")
            }
        }
        if !aliases.isEmpty {
            let existing = Set(await service.toc.listAliases().map(\.aliasName))
            if let taken = aliases.keys.sorted().first(where: existing.contains), !options.forceSnapshot {
                throw ConfigError("Alias \(taken) already exists. Use --force-snapshot to overwrite it.")
            }
            do {
                _ = try await service.restoreAliases(aliases)
            } catch {
                throw ConfigError("--storage-snapshot: cannot restore its aliases: \(error)")
            }
        }
    }

    public static func run(settings: Settings, options: LaunchOptions) async throws {
        let logger = Logger(label: "quiver")
        for source in settings.sources { logger.info("Loaded configuration from \(source)") }
        for warning in settings.warnings { logger.warning("\(warning)") }
        if !settings.cluster.enabled {
            if options.uri != nil || options.bootstrap != nil || options.reinit {
                logger.warning("cluster.enabled is false: --uri, --bootstrap and --reinit are ignored in single-node mode")
            }
        }

        let disk = PosixDisk()
        let storagePath = settings.storage.storagePath
        do {
            try disk.createDirectories(storagePath)
        } catch {
            throw ConfigError("cannot create storage directory \(storagePath): \(error)")
        }
        let lock = try StorageLock(directory: storagePath)
        // Read-only below the reserve: a node on a full disk still starts and serves reads.
        let space = SpaceGuard(path: storagePath, disk: disk, reserve: settings.storage.diskReserveMb.map { UInt64($0) << 20 })
        // The quotas of `/quotas`, recorded in `quota.json`: a cluster's come from its catalogue as
        // the log replays (the file keeps the last known for `--reinit`), a single node's from the file.
        let quota: NodeQuota
        do {
            quota = try NodeQuota(storagePath: storagePath, disk: disk, memory: ProcessMemory(), defaults: settings.storage.quotas,
                                  file: joinPath(storagePath, "quota.json"))
        } catch {
            throw ConfigError(error.description)
        }
        let spaceLogger = Logger(label: "quiver.storage")
        // Logged when it changes, whichever write or tick noticed it first.
        let refusing = Mutex(false)
        let overQuota = Mutex(false)
        /// Whether `flag` changes to `refused`'s presence.
        @Sendable func changes(_ flag: borrowing Mutex<Bool>, _ refused: String?) -> Bool {
            flag.withLock { was in defer { was = refused != nil }; return was != (refused != nil) }
        }
        let watchSpace: @Sendable () -> Void = {
            space.measure()
            let refusal = space.refusal
            if changes(refusing, refusal) {
                if let refusal {
                    spaceLogger.warning("Writes that add data are refused from now on: \(refusal)")
                } else {
                    spaceLogger.info("Writes are taken again: the disk holding the storage has \(SpaceGuard.size(space.reading?.available ?? 0)) free")
                }
            }
            let over = quota.refusal()
            if changes(overQuota, over) {
                if let over {
                    spaceLogger.warning("Writes that add data are refused over the node's quota: \(over)")
                } else {
                    spaceLogger.info("Writes are taken again: the node is within its quotas")
                }
            }
        }
        watchSpace()
        let toc = TableOfContent(
            storagePath: storagePath,
            disk: disk,
            defaults: settings.storage.collectionDefaults,
            maxCollections: settings.storage.maxCollections,
            snapshotsPath: settings.storage.snapshotsPath,
            scratchPath: settings.storage.tempPath,
            space: space,
            quota: quota,
            logger: Logger(label: "quiver.storage")
        )
        // Certificates are read now: a missing or unusable file stops the node before it serves.
        var certificates: CertificateFiles?
        if let files = settings.tls {
            let tlsLogger = Logger(label: "quiver.tls")
            do {
                certificates = try CertificateFiles(files: files, onReloadFailure: { problem in
                    tlsLogger.error("Could not read the TLS certificate again; serving the current one: \(problem)")
                })
            } catch {
                throw ConfigError(error.description)
            }
        }
        // Metadata changes go through consensus: the cluster's, or a single node's one-member one.
        let downloader = settings.service.enableSnapshotURLRecovery ? SnapshotDownload.downloader(allowing: settings.service.snapshotURLHosts) : nil
        // What one read's results may need: as set, else a quarter of the memory the process may use, at most 1 GiB.
        let requestMemoryLimit = settings.service.maxRequestMemoryMb.map { $0 << 20 }
            ?? Int(min(1 << 30, (ProcessMemory().totalBytes() ?? 4 << 30) / 4))
        let service: QuiverService
        let cluster: ClusterNode?
        if settings.cluster.enabled {
            let security = PeerSecurity(certificates: settings.cluster.p2pTLS ? certificates : nil,
                                        secret: settings.service.apiKey, enforced: settings.service.enforceInternalAuth)
            // Loads `toc` once it knows its id.
            cluster = try await ClusterNode.start(settings: settings, options: options, toc: toc, disk: disk, security: security, logger: logger)
            service = QuiverService(toc: toc, consensus: cluster!.manager, cluster: cluster, downloader: downloader,
                                    reshardingEnabled: settings.cluster.reshardingEnabled, requestMemoryLimit: requestMemoryLimit)
        } else {
            try await toc.load()
            cluster = nil
            service = try await QuiverService.standalone(toc: toc, disk: disk, logger: Logger(label: "quiver.consensus"),
                                                         downloader: downloader, requestMemoryLimit: requestMemoryLimit)
        }
        defer { cluster?.stop() }
        try await recoverStartupSnapshots(options, service: service, logger: logger)

        let apiKeys = APIKeys(apiKey: settings.service.apiKey, altApiKey: settings.service.altApiKey,
                              readOnlyApiKey: settings.service.readOnlyApiKey, jwtRBAC: settings.service.jwtRBAC)
        if settings.service.jwtRBAC && (settings.service.apiKey ?? "").isEmpty && (settings.service.altApiKey ?? "").isEmpty {
            logger.warning("service.jwt_rbac is set but no service.api_key: tokens are signed with the API key, so none is accepted")
        }
        if !apiKeys.enabled && !["127.0.0.1", "::1", "localhost"].contains(settings.service.host) {
            logger.warning("""
                No API key is set and the APIs listen on \(settings.service.host), not only on this machine: anyone who \
                can reach the ports can read and delete every collection. Set service.api_key (and \
                service.read_only_api_key for readers), or service.host: 127.0.0.1.
                """)
        }
        let rest = RESTConfiguration(
            host: settings.service.host,
            port: settings.service.httpPort,
            requestBodyBytesMax: settings.service.maxRequestSizeMb * 1024 * 1024,
            enableCORS: settings.service.enableCORS,
            workerThreads: settings.service.maxWorkers,
            commit: options.commit,
            apiKeys: apiKeys,
            tls: try serviceTLS(certificates, settings: settings, alpn: ["http/1.1"])
        )
        let collections = await toc.collectionCount
        let app = RESTServer.makeApplication(service: service, configuration: rest, logger: Logger(label: "quiver.rest")) { port in
            let mode = cluster.map { "cluster peer \($0.network.peerId), p2p on port \(settings.cluster.p2pPort)" } ?? "single node"
            logger.info("Quiver \(QuiverService.apiVersion) (Qdrant API) — \(mode), \(collections) collection(s) in \(storagePath)")
            logger.info("REST API listening on \(settings.service.enableTLS ? "https" : "http")://\(settings.service.host):\(port)")
        }
        // Services stop in reverse order: REST first, then the optimizer, then the final flush.
        // Every second: fsync `wait=false` writes and persist segments that are due; at shutdown,
        // everything. A failed flush means a shard stopped accepting writes: say so loudly.
        let storageLogger = Logger(label: "quiver.storage")
        // A failure is logged when it first happens or changes, not every second it lasts (a
        // full disk fails every flush until room is made).
        let lastFlushFailure = Mutex<String?>(nil)
        let flushNow: @Sendable (Bool) async -> Void = { force in
            do {
                try await toc.flushAll(force: force)
                if lastFlushFailure.withLock({ $0.take() }) != nil { storageLogger.info("Flushing works again") }
            } catch {
                let text = "\(error)"
                if lastFlushFailure.withLock({ last in defer { last = text }; return last != text }) {
                    storageLogger.error("Flushing failed; it is tried again every second: \(text)")
                }
            }
        }
        let ticks = Mutex(0)
        let flush = PeriodicService(interval: .seconds(1), tick: {
            watchSpace()
            await flushNow(false)
            // Every 10 s, on a thread of its own (it takes the allocator's locks while it runs).
            if ticks.withLock({ count in defer { count += 1 }; return count % 10 == 0 }) {
                DispatchQueue.global(qos: .utility).async { ProcessMemory.releaseFreeMemory() }
            }
        }, final: { await flushNow(true) })
        let optimizerLogger = Logger(label: "quiver.optimizer")
        let optimizer = PeriodicService(interval: .seconds(1), cancelsTick: true, tick: {
            do {
                try await toc.optimizeAll()
            } catch {
                optimizerLogger.error("Optimization failed: \(error)")
            }
        })
        // New replicas become Active once created here (a Listener peer's become Listener).
        let replicaStates = PeriodicService(interval: .milliseconds(200), tick: { [listener = cluster?.isListener ?? false] in
            await service.consensus.settleOwnReplicaStates(listener: listener)
            await service.consensus.retryStorageEffects()
        })
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: flush), .init(service: optimizer), .init(service: replicaStates)]
        if let cluster {
            services.append(.init(service: PeerServerService(node: cluster)))
            // Shard transfers this peer sends, and the recovery of its Dead replicas.
            let transfers = TransferDriver(consensus: cluster.manager, toc: toc, logger: Logger(label: "quiver.transfers"),
                                           incomingLimit: settings.storage.incomingTransfersLimit,
                                           outgoingLimit: settings.storage.outgoingTransfersLimit,
                                           restoresReplicationFactor: settings.cluster.restoreReplicationFactor,
                                           rebalances: settings.cluster.rebalance,
                                           isResponsive: { [cluster] peer in cluster.isResponsive(peer) },
                                           members: { [cluster] in cluster.engine.status.members.map(\.id) },
                                           awaitPeers: { [cluster] index, timeout in await cluster.awaitPeers(applying: index, timeout: timeout) })
            services.append(.init(service: PeriodicService(interval: .milliseconds(200), tick: { [cluster] in
                await transfers.tick(ready: await cluster.isReady())
            })))
            if let bootstrap = options.bootstrap, !cluster.engine.status.members.contains(where: { $0.id == cluster.network.peerId }) {
                // Joining needs the p2p server up: the leader connects back to replicate the log.
                Task {
                    do {
                        try await cluster.join(through: bootstrap, uri: options.uri, p2pPort: settings.cluster.p2pPort,
                                               identityPath: joinPath(storagePath, "cluster.json"), disk: disk)
                    } catch {
                        logger.critical("\(error)")
                        exit(1)
                    }
                }
            }
        }
        if let grpcPort = settings.service.grpcPort {
            let grpc = GRPCAPI.Configuration(host: settings.service.host, port: grpcPort,
                                             requestBytesMax: settings.service.maxRequestSizeMb * 1024 * 1024, commit: options.commit,
                                             apiKeys: apiKeys, tls: try serviceTLS(certificates, settings: settings, alpn: ["h2"]))
            services.append(.init(service: GRPCService(service: service, configuration: grpc, logger: logger)))
        }
        services.append(.init(service: app))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        withExtendedLifetime(lock) {}
        logger.info("Quiver stopped")
    }
}

/// The TLS of the REST or gRPC listener offering `alpn`, when `service.enable_tls` is on.
private func serviceTLS(_ certificates: CertificateFiles?, settings: Settings, alpn: [String]) throws(ConfigError) -> NIOSSLContext? {
    guard settings.service.enableTLS, let certificates else { return nil }
    do {
        return try certificates.serverContext(alpn: alpn, verifyClients: settings.service.verifyClientCertificates)
    } catch {
        throw ConfigError(error.description)
    }
}

/// The public gRPC server as a service of the group.
struct GRPCService: Service {
    let service: QuiverService
    let configuration: GRPCAPI.Configuration
    let logger: Logger

    func run() async throws {
        let server = try await UnaryServer.bind(service: service, configuration: configuration)
        logger.info("gRPC API listening on \(configuration.host):\(server.port ?? configuration.port)")
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            server.shutdown()
        }
    }
}
