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

    @Option(help: "Recover a collection from a snapshot: PATH:COLLECTION. Not implemented yet.")
    var snapshot: [String] = []

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
        if !snapshot.isEmpty {
            throw ValidationError("--snapshot: recovery from snapshots is not implemented yet")
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
        var options = LaunchOptions()
        options.uri = uri
        options.bootstrap = bootstrap
        options.reinit = reinit
        options.disableTelemetry = disableTelemetry || settings.telemetryDisabled
        options.commit = env["QUIVER_COMMIT"].flatMap { $0.isEmpty ? nil : $0 }
        var settingsWithWarnings = settings
        settingsWithWarnings.warnings += warnings
        do {
            try await QuiverNode.run(settings: settingsWithWarnings, options: options)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("quiver: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
