import ArgumentParser
import Foundation
import QuiverServer

@main
struct Quiver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "A distributed vector database that speaks Qdrant's REST API."
    )

    @Option(help: "This peer's URI for other peers, e.g. http://10.0.0.1:6335 (cluster mode). Env: QDRANT_URI.")
    var uri: String?

    @Option(help: "URI of a peer of an existing cluster to join (cluster mode). Env: QDRANT_BOOTSTRAP.")
    var bootstrap: String?

    @Flag(help: "Re-found consensus from this node's state, forgetting the other peers (cluster mode).")
    var reinit = false

    @Option(name: .customLong("config-path"), help: "A configuration file layered over config/*.yaml.")
    var configPath: String?

    @Flag(name: .customLong("disable-telemetry"), help: "Do not report anonymous usage statistics.")
    var disableTelemetry = false

    @Option(name: [.customLong("snapshot"), .customLong("collection-snapshot")],
            help: "Recover a collection from a snapshot file at start-up: PATH:COLLECTION (repeatable).")
    var snapshot: [String] = []

    @Option(name: .customLong("storage-snapshot"), help: "Recover every collection and alias from a full storage snapshot at start-up.")
    var storageSnapshot: String?

    @Flag(name: [.customShort("f"), .customLong("force-snapshot")], help: "Let --snapshot and --storage-snapshot replace collections and aliases that exist.")
    var forceSnapshot = false

    mutating func validate() throws {
        let env = ProcessInfo.processInfo.environment
        if uri == nil { uri = env["QDRANT_URI"].flatMap { $0.isEmpty ? nil : $0 } }
        if bootstrap == nil { bootstrap = env["QDRANT_BOOTSTRAP"].flatMap { $0.isEmpty ? nil : $0 } }
        if let uri, let problem = PeerURI.problem(uri) {
            throw ValidationError("--uri \(uri): \(problem)")
        }
        if let bootstrap, let problem = PeerURI.problem(bootstrap) {
            throw ValidationError("--bootstrap \(bootstrap): \(problem)")
        }
        for item in snapshot {
            guard let colon = item.lastIndex(of: ":"), colon != item.startIndex, item.index(after: colon) != item.endIndex else {
                throw ValidationError("--snapshot \(item): expected PATH:COLLECTION")
            }
        }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let settings: Settings
        do {
            settings = try Settings.load(configPath: configPath, environment: env)
        } catch {
            FileHandle.standardError.write(Data("quiver: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let (filter, warnings) = LogFilter.parse(settings.logLevel)
        QuiverNode.bootstrapLogging(filter)
        Self.raiseOpenFileLimit()
        var options = LaunchOptions()
        options.uri = uri
        options.bootstrap = bootstrap
        options.reinit = reinit
        options.disableTelemetry = disableTelemetry || settings.telemetryDisabled
        options.commit = env["QUIVER_COMMIT"].flatMap { $0.isEmpty ? nil : $0 }
        options.snapshots = snapshot.map { item in
            let colon = item.lastIndex(of: ":")!
            return (path: String(item[..<colon]), collection: String(item[item.index(after: colon)...]))
        }
        options.storageSnapshot = storageSnapshot
        options.forceSnapshot = forceSnapshot
        var settingsWithWarnings = settings
        settingsWithWarnings.warnings += warnings
        do {
            try await QuiverNode.run(settings: settingsWithWarnings, options: options)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("quiver: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// Every shard keeps files open (its WAL, and the unnamed files behind its write segment's
    /// vectors and payloads stored on disk): the soft limit on open files goes up to the hard one,
    /// so that a node with many collections does not run out under a low default.
    static func raiseOpenFileLimit() {
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(resource, &limit)
        #endif
    }
}
