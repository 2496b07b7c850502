import Logging
import ServiceLifecycle
import Storage

/// Runs due optimizations (vacuum) every second, apart from the flush loop so a long optimization
/// never delays the fsync of `wait=false` writes.
struct OptimizerService: Service {
    static let checkInterval = Duration.seconds(1)

    let toc: TableOfContent
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.checkInterval) }
            if Task.isShuttingDownGracefully { break }
            do {
                try await toc.optimizeAll()
            } catch {
                logger.error("Optimization failed: \(error)")
            }
        }
    }
}
