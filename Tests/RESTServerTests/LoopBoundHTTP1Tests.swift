import Hummingbird
import Logging
import NIOCore
import NIOPosix
@testable import RESTServer
import ServiceLifecycle
import Synchronization
import Testing

/// Where a request's handler runs: on the event loop that read the request, together with the
/// actors it calls; the work it shares out for parallelism on Swift's shared pool.
@Suite struct LoopBoundHTTP1Tests {
    actor Counter {
        var calls = 0
        func call() -> Bool {
            calls += 1
            return MultiThreadedEventLoopGroup.currentEventLoop != nil
        }
    }

    @Test func handlersAndTheActorsTheyCallRunOnTheConnectionsEventLoop() async throws {
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let counter = Counter()
        let router = Router()
        router.get("/where") { _, _ -> String in
            let handler = MultiThreadedEventLoopGroup.currentEventLoop != nil
            let actor = await counter.call()
            let child = await withTaskGroup(of: Bool.self) { group in
                group.addTask(executorPreference: globalConcurrentExecutor) { MultiThreadedEventLoopGroup.currentEventLoop != nil }
                return await group.next()!
            }
            return "\(handler) \(actor) \(child)"
        }
        let port = Mutex<Int?>(nil)
        let app = Application(router: router, server: LoopBoundHTTP1.builder(loops),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
                              eventLoopGroupProvider: .shared(loops), logger: Logger(label: "test"))
        try await serve(app, port: port) { client in
            for _ in 0..<4 {
                let reply = try await client.send("GET", "/where")
                #expect(reply.status == 200)
                #expect(reply.body == "true true false", "handler, actor, and the child task on the shared pool")
            }
        }
        #expect(await counter.calls == 4)
        try await loops.shutdownGracefully()
    }
}
