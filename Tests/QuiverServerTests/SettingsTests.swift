import Foundation
import Logging
import QuiverModel
import QuiverServer
import QuiverTLS
import Testing

/// A working directory with a `config/` folder, removed at the end.
final class ConfigDir {
    let path = NSTemporaryDirectory() + "quiver-cfg-\(UUID().uuidString)"

    init(_ files: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: path + "/config", withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func load(_ env: [String: String] = [:], configPath: String? = nil) throws -> Settings {
        try Settings.load(configPath: configPath.map { path + "/" + $0 }, environment: env, workingDirectory: path)
    }
}

@Suite struct SettingsTests {
    @Test func defaultsWithoutFiles() throws {
        let s = try ConfigDir([:]).load()
        #expect(s.service.httpPort == 6333)
        #expect(s.service.grpcPort == 6334)
        #expect(s.storage.storagePath == "./storage")
        #expect(s.storage.collectionDefaults.hnsw.m == 16)
        #expect(s.cluster.enabled == false)
        #expect(s.warnings.isEmpty)
    }

    @Test func layersApplyInOrder() throws {
        let dir = try ConfigDir([
            "config/config.yaml": "service:\n  http_port: 1000\n  grpc_port: 1001\nlog_level: DEBUG\n",
            "config/staging.yaml": "service:\n  http_port: 2000\n",
            "config/local.yaml": "storage:\n  storage_path: /data\n",
            "custom.yaml": "storage:\n  hnsw_index:\n    m: 32\n",
        ])
        let s = try dir.load(["RUN_MODE": "staging", "QDRANT__STORAGE__HNSW_INDEX__EF_CONSTRUCT": "256"], configPath: "custom.yaml")
        #expect(s.service.httpPort == 2000)
        #expect(s.service.grpcPort == 1001)
        #expect(s.logLevel == "DEBUG")
        #expect(s.storage.storagePath == "/data")
        #expect(s.storage.collectionDefaults.hnsw.m == 32)
        #expect(s.storage.collectionDefaults.hnsw.efConstruct == 256)
        #expect(s.sources.count == 4)
    }

    @Test func environmentOverridesWithCoercion() throws {
        let s = try ConfigDir(["config/config.yaml": "service:\n  http_port: 1000\n"]).load([
            "QDRANT__SERVICE__HTTP_PORT": "7333",
            "QUIVER__SERVICE__ENABLE_CORS": "false",
            "QDRANT__STORAGE__OPTIMIZERS__DELETED_THRESHOLD": "0.5",
            "QDRANT__STORAGE__ON_DISK_PAYLOAD": "False",
        ])
        #expect(s.service.httpPort == 7333)
        #expect(s.service.enableCORS == false)
        #expect(s.storage.collectionDefaults.optimizers.deletedThreshold == 0.5)
        #expect(s.storage.collectionDefaults.onDiskPayload == false)
    }

    @Test func transferLimitsAndSnapshotStorage() throws {
        #expect(try ConfigDir([:]).load().storage.incomingTransfersLimit == 1)
        let s = try ConfigDir(["config/config.yaml": "storage:\n  performance:\n    incoming_shard_transfers_limit: null\n"]).load([
            "QDRANT__STORAGE__PERFORMANCE__OUTGOING_SHARD_TRANSFERS_LIMIT": "3",
            "QDRANT__STORAGE__SNAPSHOTS_CONFIG__SNAPSHOTS_STORAGE": "local",
        ])
        #expect(s.storage.incomingTransfersLimit == nil && s.storage.outgoingTransfersLimit == 3 && s.warnings.isEmpty)
        #expect(throws: ConfigError.self) {
            _ = try ConfigDir([:]).load(["QDRANT__STORAGE__SNAPSHOTS_CONFIG__SNAPSHOTS_STORAGE": "s3"])
        }
        #expect(throws: ConfigError.self) {
            _ = try ConfigDir([:]).load(["QDRANT__STORAGE__PERFORMANCE__INCOMING_SHARD_TRANSFERS_LIMIT": "0"])
        }
    }

    @Test func unknownKeysWarnButDoNotFail() throws {
        let s = try ConfigDir(["config/config.yaml": "service:\n  http_port: 1\n  shiny: true\nnonsense:\n  a: 1\n"]).load(["QDRANT__STORAGE__WHAT": "x"])
        #expect(s.warnings == [
            "unknown configuration key `nonsense.a` is ignored",
            "unknown configuration key `service.shiny` is ignored",
            "unknown configuration key `storage.what` is ignored",
        ])
    }

    @Test func badValuesAreErrorsNamingTheKey() throws {
        #expect(throws: ConfigError("service.http_port: expected an integer, found \"abc\"")) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__HTTP_PORT": "abc"])
        }
        #expect(throws: ConfigError("service.http_port: 70000 is not a port number (0-65535)")) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__HTTP_PORT": "70000"])
        }
        #expect(throws: ConfigError.self) { try ConfigDir(["config/config.yaml": "service: [\n"]).load() }
        #expect(throws: ConfigError.self) { try ConfigDir([:]).load(configPath: "missing.yaml") }
        #expect(throws: ConfigError.self) { try ConfigDir([:]).load(["QDRANT__STORAGE__NODE_TYPE": "Boss"]) }
        #expect(throws: ConfigError("service.max_workers: must be 0 or larger, found -1")) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__MAX_WORKERS": "-1"])
        }
    }

    @Test func readsTheTLSSettings() throws {
        let files = ["config/config.yaml": "tls:\n  cert: c.pem\n  key: k.pem\n  ca_cert: ca.pem\n"]
        // No TLS switch on: the section is not needed (the shipped config.yaml names files no one made).
        #expect(try ConfigDir(files).load().tls == nil)
        let on = try ConfigDir(files).load(["QDRANT__SERVICE__ENABLE_TLS": "true", "QDRANT__TLS__CERT_TTL": "60"])
        #expect(on.tls == TLSFiles(cert: "c.pem", key: "k.pem", caCert: "ca.pem", certTTL: .seconds(60)))
        #expect(try ConfigDir(files).load(["QDRANT__CLUSTER__P2P__ENABLE_TLS": "true"]).tls?.certTTL == .seconds(3600))
        #expect(try ConfigDir(files).load(["QDRANT__SERVICE__ENABLE_TLS": "true", "QDRANT__TLS__CERT_TTL": "0"]).tls?.certTTL == nil)
        #expect(throws: ConfigError("service.enable_tls: tls.cert and tls.key must name the certificate chain and private key (PEM)")) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__ENABLE_TLS": "true"])
        }
        #expect(throws: ConfigError.self) {
            try ConfigDir([:]).load(["QDRANT__CLUSTER__P2P__ENABLE_TLS": "true", "QDRANT__TLS__CERT": "c", "QDRANT__TLS__KEY": "k"])
        }
        #expect(throws: ConfigError("service.verify_https_client_certificate: needs service.enable_tls")) {
            try ConfigDir(files).load(["QDRANT__SERVICE__VERIFY_HTTPS_CLIENT_CERTIFICATE": "true"])
        }
        #expect(throws: ConfigError("service.enforce_internal_auth: peers authenticate with service.api_key, which is not set")) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__ENFORCE_INTERNAL_AUTH": "true"])
        }
        #expect(throws: ConfigError.self) {
            try ConfigDir([:]).load(["QDRANT__SERVICE__ENFORCE_INTERNAL_AUTH": "true", "QDRANT__SERVICE__API_KEY": ""])
        }
    }

    @Test func readsTheSnapshotURLHosts() throws {
        #expect(try ConfigDir([:]).load().service.snapshotURLHosts == nil)
        let listed = try ConfigDir(["config/config.yaml": "service:\n  snapshot_url_allowed_hosts: [backups.example, \"10.0.0.7:6333\", \"*.snapshots.example\", \"[fd00::1]:8080\"]\n"]).load()
        let hosts = try #require(listed.service.snapshotURLHosts)
        for (url, allowed) in [("http://backups.example/x.snapshot", true), ("https://BACKUPS.example.:8443/x", true),
                               ("http://10.0.0.7:6333/collections/c/snapshots/s", true), ("http://10.0.0.7:6334/x", false),
                               ("http://10.0.0.7/x", false), ("https://eu.snapshots.example/x", true),
                               ("https://snapshots.example/x", false), ("https://evilsnapshots.example/x", false),
                               ("http://[fd00::1]:8080/x", true), ("http://[fd00::1]/x", false),
                               ("http://backups.example.evil/x", false), ("http://169.254.169.254/latest", false)] {
            #expect(hosts.allows(URL(string: url)!) == allowed, "\(url)")
        }
        let fromEnvironment = try ConfigDir([:]).load(["QDRANT__SERVICE__SNAPSHOT_URL_ALLOWED_HOSTS": "a.example, b.example:80"])
        #expect(fromEnvironment.service.snapshotURLHosts == (try SnapshotHosts(["a.example", "b.example:80"])))
        #expect(try ConfigDir([:]).load(["QDRANT__SERVICE__SNAPSHOT_URL_ALLOWED_HOSTS": ""]).service.snapshotURLHosts?.allows(URL(string: "http://a/")!) == false)
        for bad in ["http://a.example", "a.example/path", "*", "a.*.example", "user@a.example"] {
            #expect(throws: ConfigError("service.snapshot_url_allowed_hosts: \"\(bad)\" is not a host, host:port or *.domain")) {
                try ConfigDir([:]).load(["QDRANT__SERVICE__SNAPSHOT_URL_ALLOWED_HOSTS": bad])
            }
        }
    }

    @Test func readsTheQuotas() throws {
        #expect(try ConfigDir([:]).load().storage.quotas == QuotaConfig())
        let set = try ConfigDir(["config/config.yaml": "storage:\n  quotas:\n    enabled: true\n    max_disk_usage_percent: 90\n    release_margin_percent: 0\n"]).load()
        #expect(set.storage.quotas == QuotaConfig(enabled: true, maxDiskUsagePercent: 90, releaseMarginPercent: 0))
        let env = try ConfigDir([:]).load(["QDRANT__STORAGE__QUOTAS__MAX_RESIDENT_MEMORY_PERCENT": "75"])
        #expect(env.storage.quotas == QuotaConfig(maxResidentMemoryPercent: 75))
        #expect(throws: ConfigError("storage.quotas.max_disk_usage_percent: must be 1 to 100, found 0")) {
            try ConfigDir([:]).load(["QDRANT__STORAGE__QUOTAS__MAX_DISK_USAGE_PERCENT": "0"])
        }
    }

    @Test func readsTheAPIKeys() throws {
        let settings = try ConfigDir(["config/config.yaml": "service:\n  api_key: from-file\n  read_only_api_key: ~\n"])
            .load(["QDRANT__SERVICE__ALT_API_KEY": "rotated", "QDRANT__SERVICE__READ_ONLY_API_KEY": "reader"])
        #expect(settings.service.apiKey == "from-file")
        #expect(settings.service.altApiKey == "rotated")
        #expect(settings.service.readOnlyApiKey == "reader")
        #expect(!settings.service.jwtRBAC)
        #expect(try ConfigDir([:]).load(["QDRANT__SERVICE__JWT_RBAC": "true"]).service.jwtRBAC)
        let none = try ConfigDir(["config/config.yaml": "service:\n  api_key: ~\n"]).load()
        #expect(none.service.apiKey == nil)
    }

    @Test func shippedConfigFileHasOnlyKnownKeysAndDefaultValues() throws {
        let repoConfig = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../config/config.yaml").standardized.path
        let text = try String(contentsOfFile: repoConfig, encoding: .utf8)
        let s = try ConfigDir(["config/config.yaml": text]).load()
        let defaults = try ConfigDir([:]).load()
        #expect(s.warnings.isEmpty)
        #expect(s.service.httpPort == defaults.service.httpPort)
        #expect(s.storage.collectionDefaults == defaults.storage.collectionDefaults)
        #expect(s.cluster.p2pPort == defaults.cluster.p2pPort)
        #expect(s.logLevel == defaults.logLevel)
    }
}

@Suite struct LogFilterTests {
    @Test func parsesDefaultAndOverrides() {
        let (filter, warnings) = LogFilter.parse("INFO,raft=warn,quiver::storage=debug, quiver.rest = trace")
        #expect(warnings.isEmpty)
        #expect(filter.level(for: "quiver") == .info)
        #expect(filter.level(for: "raft") == .warning)
        #expect(filter.level(for: "raft.log") == .warning)
        #expect(filter.level(for: "rafty") == .info)
        #expect(filter.level(for: "quiver.storage") == .debug)
        #expect(filter.level(for: "quiver.rest") == .trace)
    }

    @Test func longestTargetWins() {
        let (filter, _) = LogFilter.parse("error,quiver=info,quiver.storage=off")
        #expect(filter.level(for: "quiver.storage.wal") == .critical)
        #expect(filter.level(for: "quiver.rest") == .info)
        #expect(filter.level(for: "other") == .error)
    }

    @Test func badPartsAreWarningsNotFailures() {
        let (filter, warnings) = LogFilter.parse("loud,raft=shout,debug")
        #expect(filter.defaultLevel == .debug)
        #expect(warnings.count == 2)
    }
}

@Suite struct PeerURITests {
    @Test(arguments: ["http://10.0.0.1:6335", "https://node-1.example:6335", "http://[::1]:6335"])
    func accepts(uri: String) { #expect(PeerURI.problem(uri) == nil) }

    @Test(arguments: ["10.0.0.1:6335", "ftp://a:1", "http://a", "http://:6335", "http://a:0", "not a uri"])
    func rejects(uri: String) { #expect(PeerURI.problem(uri) != nil) }
}
