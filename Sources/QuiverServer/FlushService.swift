import Logging
import ServiceLifecycle
import Storage

/// Fsyncs `wait=false` writes once they are `flush_interval_sec` old (checked every second), and
/// everything still pending when the node shuts down.
struct FlushService: Service {
    static let checkInterval = Duration.seconds(1)

    let toc: TableOfContent
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.checkInterval) }
            await flush()
        }
        await flush()
    }

    private func flush() async {
        do {
            try await toc.flushAll()
        } catch {
            // The shard that failed stops acknowledging writes (its WAL is poisoned); say so loudly.
            logger.error("Flushing the WAL failed; the shard no longer accepts writes: \(error)")
        }
    }
}
