import Logging
import ServiceLifecycle
import Storage

/// Fsyncs `wait=false` writes and persists segments every `flush_interval_sec` (checked every
/// second), and everything still pending when the node shuts down.
struct FlushService: Service {
    static let checkInterval = Duration.seconds(1)

    let toc: TableOfContent
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.checkInterval) }
            await flush(force: false)
        }
        await flush(force: true)
    }

    private func flush(force: Bool) async {
        do {
            try await toc.flushAll(force: force)
        } catch {
            // The shard that failed stops acknowledging writes (its WAL is poisoned); say so loudly.
            logger.error("Flushing the WAL failed; the shard no longer accepts writes: \(error)")
        }
    }
}
