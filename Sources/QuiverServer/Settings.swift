public import QuiverModel
public import QuiverTLS
import DiskIO
import Foundation

/// Node configuration, read from (later wins): built-in defaults, `config/config.yaml`,
/// `config/$RUN_MODE.yaml`, `config/local.yaml`, `--config-path FILE`, then environment variables
/// `QDRANT__SECTION__KEY` / `QUIVER__SECTION__KEY`. Every key is documented in `config/config.yaml`.
public struct Settings: Sendable {
    public enum NodeType: String, Sendable {
        case normal = "Normal"
        case listener = "Listener"
    }

    public struct Storage: Sendable {
        public var storagePath = "./storage"
        public var snapshotsPath = "./snapshots"
        public var tempPath: String?
        /// `storage.disk_reserve_mb`: free space kept on the storage's disk, below which writes that
        /// add data are refused; nil: the larger of 1% and 256 MiB, at most a tenth of the disk.
        public var diskReserveMb: Int?
        /// `storage.quotas`: the node-wide quotas until `PUT /quotas` sets others.
        public var quotas = QuotaConfig()
        public var maxCollections: Int?
        public var nodeType = NodeType.normal
        /// `storage.performance.incoming_shard_transfers_limit` / `outgoing_…`: automatic shard
        /// transfers a peer receives / sends per collection at once; nil: no limit.
        public var incomingTransfersLimit: Int? = 1
        public var outgoingTransfersLimit: Int? = 1
        public var collectionDefaults = CollectionDefaults()
    }

    public struct Service: Sendable {
        public var host = "0.0.0.0"
        public var httpPort = 6333
        public var grpcPort: Int? = 6334
        public var maxRequestSizeMb = 32
        /// `service.max_request_memory_mb`: the most memory one read's results may need; nil: a
        /// quarter of the memory available to the process, at most 1 GiB.
        public var maxRequestMemoryMb: Int?
        public var maxWorkers = 0
        public var enableCORS = true
        /// `service.enable_snapshot_url_recovery`: snapshot recovery may fetch `http(s)://` locations.
        public var enableSnapshotURLRecovery = true
        /// `service.snapshot_url_allowed_hosts`: the hosts snapshot recovery may download from;
        /// nil: any host.
        public var snapshotURLHosts: SnapshotHosts?
        /// `service.api_key`, `service.alt_api_key` (a second key for rotation) and
        /// `service.read_only_api_key`; empty or unset, none is asked for.
        public var apiKey: String?
        public var altApiKey: String?
        public var readOnlyApiKey: String?
        /// `service.jwt_rbac`: JWTs signed with `api_key` (or `alt_api_key`) are accepted too.
        public var jwtRBAC = false
        /// `service.enable_tls`: REST and gRPC over TLS with `tls.cert` and `tls.key`.
        public var enableTLS = false
        /// `service.verify_https_client_certificate`: REST and gRPC clients must present a
        /// certificate that `tls.ca_cert` signed.
        public var verifyClientCertificates = false
        /// `service.enforce_internal_auth`: the p2p port refuses calls without `service.api_key`.
        public var enforceInternalAuth = false
    }

    public struct Cluster: Sendable {
        public var enabled = false
        public var p2pPort = 6335
        public var tickPeriodMs = 100
        public var compactWalEntries = 128
        public var grpcTimeoutMs = 1000
        public var connectionTimeoutMs = 2000
        /// `cluster.restore_replication_factor`: shards with fewer replicas than their collection's
        /// `replication_factor` (a peer removed, the factor raised) get new ones by themselves.
        public var restoreReplicationFactor = true
        /// `cluster.rebalance`: shards move between peers until each holds within one replica of
        /// the others (after a peer joins or leaves).
        public var rebalance = true
        /// `cluster.resharding_enabled`: `start_resharding` changes the shard count in place
        /// (Qdrant's switch, off by default there).
        public var reshardingEnabled = true
        /// `cluster.p2p.enable_tls`: mutual TLS between peers (`tls.cert`, `tls.key`, `tls.ca_cert`).
        public var p2pTLS = false
    }

    public var logLevel = "INFO"
    public var storage = Storage()
    public var service = Service()
    public var cluster = Cluster()
    /// The `tls` section; read when a TLS switch is on.
    public var tls: TLSFiles?
    public var telemetryDisabled = false
    /// Non-fatal findings while loading (unknown keys), to log once logging is set up.
    public var warnings: [String] = []
    /// Files that were read, in order.
    public var sources: [String] = []

    public init() {}

    /// Loads the layered configuration. Relative `config/…` paths are resolved against
    /// `workingDirectory`; `configPath` must exist when given.
    public static func load(configPath: String?, environment: [String: String],
                            workingDirectory: String = FileManager.default.currentDirectoryPath) throws(ConfigError) -> Settings {
        var tree = ConfigTree()
        var sources: [String] = []
        let runMode = environment["RUN_MODE"] ?? "development"
        for name in ["config.yaml", "\(runMode).yaml", "local.yaml"] {
            let path = joinPath(workingDirectory, "config", name)
            if let text = try readIfExists(path) {
                try tree.merge(yaml: text, source: path)
                sources.append(path)
            }
        }
        if let configPath {
            guard let text = try readIfExists(configPath) else {
                throw ConfigError("--config-path \(configPath): no such file")
            }
            try tree.merge(yaml: text, source: configPath)
            sources.append(configPath)
        }
        tree.applyEnvironment(environment)
        var settings = try read(&tree)
        settings.sources = sources
        settings.warnings = tree.unknownKeys().map { "unknown configuration key `\($0)` is ignored" }
        return settings
    }

    private static func readIfExists(_ path: String) throws(ConfigError) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("cannot read \(path)")
        }
        return text
    }

    /// Reads every supported key from `tree`, checking types and ranges.
    static func read(_ tree: inout ConfigTree) throws(ConfigError) -> Settings {
        var s = Settings()
        s.logLevel = try tree.string("log_level") ?? s.logLevel

        s.storage.storagePath = try tree.string("storage.storage_path") ?? s.storage.storagePath
        s.storage.snapshotsPath = try tree.string("storage.snapshots_path") ?? s.storage.snapshotsPath
        s.storage.tempPath = try tree.string("storage.temp_path")
        if let kind = try tree.string("storage.snapshots_config.snapshots_storage"), kind != "local" {
            // Refusing is safer than keeping the snapshots somewhere the operator did not ask for.
            throw ConfigError("storage.snapshots_config.snapshots_storage: \"\(kind)\" is not supported; snapshots are kept on the local file system (local)")
        }
        s.storage.maxCollections = try tree.int("storage.max_collections")
        if !tree.isNull("storage.disk_reserve_mb"), let reserve = try tree.int("storage.disk_reserve_mb") {
            guard (0...(1 << 30)).contains(reserve) else { throw ConfigError("storage.disk_reserve_mb: must be 0 to 1073741824, found \(reserve)") }
            s.storage.diskReserveMb = reserve
        }
        s.storage.quotas.enabled = try tree.bool("storage.quotas.enabled") ?? false
        for (key, path, max) in [("max_resident_memory_percent", \QuotaConfig.maxResidentMemoryPercent, 100),
                                 ("max_disk_usage_percent", \QuotaConfig.maxDiskUsagePercent, 100),
                                 ("release_margin_percent", \QuotaConfig.releaseMarginPercent, 100)] {
            let key = "storage.quotas." + key
            guard !tree.isNull(key), let value = try tree.int(key) else { continue }
            let min = key.hasSuffix("release_margin_percent") ? 0 : 1
            guard (min...max).contains(value) else { throw ConfigError("\(key): must be \(min) to \(max), found \(value)") }
            s.storage.quotas[keyPath: path] = UInt8(value)
        }
        for (key, path) in [("storage.performance.incoming_shard_transfers_limit", \Settings.Storage.incomingTransfersLimit),
                            ("storage.performance.outgoing_shard_transfers_limit", \Settings.Storage.outgoingTransfersLimit)] {
            if tree.isNull(key) {
                s.storage[keyPath: path] = nil
            } else if let limit = try positive(&tree, key) {
                s.storage[keyPath: path] = limit
            }
        }
        if let nodeType = try tree.string("storage.node_type") {
            guard let value = NodeType(rawValue: nodeType) else {
                throw ConfigError("storage.node_type: expected Normal or Listener, found \"\(nodeType)\"")
            }
            s.storage.nodeType = value
        }
        var d = CollectionDefaults()
        d.onDiskPayload = try tree.bool("storage.on_disk_payload") ?? d.onDiskPayload
        d.wal.walCapacityMb = try tree.int("storage.wal.wal_capacity_mb") ?? d.wal.walCapacityMb
        d.wal.walSegmentsAhead = try tree.int("storage.wal.wal_segments_ahead") ?? d.wal.walSegmentsAhead
        d.wal.walRetainClosed = try tree.int("storage.wal.wal_retain_closed") ?? d.wal.walRetainClosed
        d.optimizers.deletedThreshold = try tree.double("storage.optimizers.deleted_threshold") ?? d.optimizers.deletedThreshold
        d.optimizers.vacuumMinVectorNumber = try tree.int("storage.optimizers.vacuum_min_vector_number") ?? d.optimizers.vacuumMinVectorNumber
        d.optimizers.defaultSegmentNumber = try tree.int("storage.optimizers.default_segment_number") ?? d.optimizers.defaultSegmentNumber
        d.optimizers.maxSegmentSize = try tree.int("storage.optimizers.max_segment_size_kb")
        d.optimizers.indexingThreshold = try tree.int("storage.optimizers.indexing_threshold_kb") ?? d.optimizers.indexingThreshold
        d.optimizers.flushIntervalSec = UInt64(try tree.int("storage.optimizers.flush_interval_sec").map { max(0, $0) } ?? Int(d.optimizers.flushIntervalSec))
        d.optimizers.maxOptimizationThreads = try tree.int("storage.optimizers.max_optimization_threads")
        d.hnsw.m = try tree.int("storage.hnsw_index.m") ?? d.hnsw.m
        d.hnsw.efConstruct = try tree.int("storage.hnsw_index.ef_construct") ?? d.hnsw.efConstruct
        d.hnsw.fullScanThreshold = try tree.int("storage.hnsw_index.full_scan_threshold_kb") ?? d.hnsw.fullScanThreshold
        d.hnsw.maxIndexingThreads = try tree.int("storage.hnsw_index.max_indexing_threads") ?? d.hnsw.maxIndexingThreads
        d.hnsw.onDisk = try tree.bool("storage.hnsw_index.on_disk") ?? d.hnsw.onDisk
        d.hnsw.payloadM = try tree.int("storage.hnsw_index.payload_m")
        d.replicationFactor = UInt32(try positive(&tree, "storage.collection.replication_factor") ?? 1)
        d.writeConsistencyFactor = UInt32(try positive(&tree, "storage.collection.write_consistency_factor") ?? 1)
        d.shardNumberPerNode = UInt32(try positive(&tree, "storage.collection.shard_number_per_node") ?? 1)
        d.vectorsOnDisk = try tree.bool("storage.collection.vectors.on_disk")
        s.storage.collectionDefaults = d

        s.service.host = try tree.string("service.host") ?? s.service.host
        s.service.httpPort = try port(&tree, "service.http_port") ?? s.service.httpPort
        if tree.isNull("service.grpc_port") {
            s.service.grpcPort = nil
        } else if let grpc = try port(&tree, "service.grpc_port") {
            s.service.grpcPort = grpc
        }
        s.service.maxRequestSizeMb = try positive(&tree, "service.max_request_size_mb") ?? s.service.maxRequestSizeMb
        s.service.maxRequestMemoryMb = try positive(&tree, "service.max_request_memory_mb")
        if let mb = s.service.maxRequestMemoryMb, mb > 1 << 30 {
            throw ConfigError("service.max_request_memory_mb: must be 1 to 1073741824, found \(mb)")
        }
        s.service.maxWorkers = try tree.int("service.max_workers") ?? s.service.maxWorkers
        guard s.service.maxWorkers >= 0 else { throw ConfigError("service.max_workers: must be 0 or larger, found \(s.service.maxWorkers)") }
        s.service.enableCORS = try tree.bool("service.enable_cors") ?? s.service.enableCORS
        s.service.enableSnapshotURLRecovery = try tree.bool("service.enable_snapshot_url_recovery") ?? s.service.enableSnapshotURLRecovery
        if !tree.isNull("service.snapshot_url_allowed_hosts"), let hosts = try tree.strings("service.snapshot_url_allowed_hosts") {
            s.service.snapshotURLHosts = try SnapshotHosts(hosts)
        }
        s.service.enableTLS = try tree.bool("service.enable_tls") ?? false
        s.service.verifyClientCertificates = try tree.bool("service.verify_https_client_certificate") ?? false
        s.service.enforceInternalAuth = try tree.bool("service.enforce_internal_auth") ?? false
        func key(_ path: String) throws(ConfigError) -> String? { tree.isNull(path) ? nil : try tree.string(path) }
        s.service.apiKey = try key("service.api_key")
        s.service.altApiKey = try key("service.alt_api_key")
        s.service.readOnlyApiKey = try key("service.read_only_api_key")
        s.service.jwtRBAC = try tree.bool("service.jwt_rbac") ?? false

        s.cluster.enabled = try tree.bool("cluster.enabled") ?? s.cluster.enabled
        s.cluster.p2pPort = try port(&tree, "cluster.p2p.port") ?? s.cluster.p2pPort
        s.cluster.tickPeriodMs = try positive(&tree, "cluster.consensus.tick_period_ms") ?? s.cluster.tickPeriodMs
        s.cluster.compactWalEntries = try positive(&tree, "cluster.consensus.compact_wal_entries") ?? s.cluster.compactWalEntries
        s.cluster.grpcTimeoutMs = try positive(&tree, "cluster.grpc_timeout_ms") ?? s.cluster.grpcTimeoutMs
        s.cluster.connectionTimeoutMs = try positive(&tree, "cluster.connection_timeout_ms") ?? s.cluster.connectionTimeoutMs
        s.cluster.restoreReplicationFactor = try tree.bool("cluster.restore_replication_factor") ?? s.cluster.restoreReplicationFactor
        s.cluster.rebalance = try tree.bool("cluster.rebalance") ?? s.cluster.rebalance
        s.cluster.reshardingEnabled = try tree.bool("cluster.resharding_enabled") ?? s.cluster.reshardingEnabled
        s.cluster.p2pTLS = try tree.bool("cluster.p2p.enable_tls") ?? false
        s.tls = try readTLS(&tree, s)
        if s.service.enforceInternalAuth && (s.service.apiKey ?? "").isEmpty {
            throw ConfigError("service.enforce_internal_auth: peers authenticate with service.api_key, which is not set")
        }

        s.telemetryDisabled = try tree.bool("telemetry_disabled") ?? s.telemetryDisabled
        return s
    }

    /// The `tls` section, required (and checked) when REST/gRPC or p2p TLS is on.
    private static func readTLS(_ tree: inout ConfigTree, _ s: Settings) throws(ConfigError) -> TLSFiles? {
        let cert = try tree.string("tls.cert"), key = try tree.string("tls.key"), ca = try tree.string("tls.ca_cert")
        let ttl: Duration?
        if tree.isNull("tls.cert_ttl") {
            ttl = nil
        } else {
            let seconds = try tree.int("tls.cert_ttl") ?? 3600
            guard seconds >= 0 else { throw ConfigError("tls.cert_ttl: must be 0 or larger, found \(seconds)") }
            ttl = seconds == 0 ? nil : .seconds(seconds)
        }
        let wanted = [("service.enable_tls", s.service.enableTLS), ("cluster.p2p.enable_tls", s.cluster.p2pTLS)].filter(\.1).map(\.0)
        if s.service.verifyClientCertificates && !s.service.enableTLS {
            throw ConfigError("service.verify_https_client_certificate: needs service.enable_tls")
        }
        guard let first = wanted.first else { return nil }
        guard let cert, let key else { throw ConfigError("\(first): tls.cert and tls.key must name the certificate chain and private key (PEM)") }
        if ca == nil {
            if s.cluster.p2pTLS { throw ConfigError("cluster.p2p.enable_tls: tls.ca_cert must name the certificate authority that signs the peers' certificates") }
            if s.service.verifyClientCertificates {
                throw ConfigError("service.verify_https_client_certificate: tls.ca_cert must name the certificate authority that signs client certificates")
            }
        }
        return TLSFiles(cert: cert, key: key, caCert: ca, certTTL: ttl)
    }

    private static func port(_ tree: inout ConfigTree, _ key: String) throws(ConfigError) -> Int? {
        guard let value = try tree.int(key) else { return nil }
        guard (0...65535).contains(value) else { throw ConfigError("\(key): \(value) is not a port number (0-65535)") }
        return value
    }

    private static func positive(_ tree: inout ConfigTree, _ key: String) throws(ConfigError) -> Int? {
        guard let value = try tree.int(key) else { return nil }
        guard value >= 1 else { throw ConfigError("\(key): must be 1 or larger, found \(value)") }
        return value
    }
}
