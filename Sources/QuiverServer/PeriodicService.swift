import ServiceLifecycle

/// Runs `tick` every `interval` until graceful shutdown, then `final` once. Each periodic job is
/// its own service, so a long optimization never delays the flush of `wait=false` writes. With
/// `cancelsTick`, graceful shutdown cancels a tick in progress (an optimization stops its index
/// build instead of finishing it).
struct PeriodicService: Service {
    let interval: Duration
    var cancelsTick = false
    let tick: @Sendable () async -> Void
    var final: (@Sendable () async -> Void)?

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully { break }
            if cancelsTick {
                await cancelWhenGracefulShutdown { await tick() }
            } else {
                await tick()
            }
        }
        await final?()
    }
}
