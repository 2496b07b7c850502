import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// HTTP/1 connections whose requests run on the event loop that reads them.
///
/// Hummingbird handles each connection in a task of Swift's shared pool: a request read on an
/// event loop wakes a pool thread to run its handler, and the response wakes the event loop again
/// to write it, two thread wake-ups per request. Here a connection's task prefers its event loop
/// as its executor, so the handler (and the actors it calls, which run on the executor their
/// caller prefers) runs on the thread that read the request and writes the response there.
/// Searches still spread over all cores: the segments and shards a request searches in parallel
/// run on the shared pool (`LocalShard.inParallel`, `Collection.searchLocal`).
/// With `tls`, each connection is HTTPS first (`service.enable_tls`).
struct LoopBoundHTTP1: ServerChildChannel {
    let http1: HTTP1Channel
    let tls: NIOSSLContext?
    /// One executor per event loop of the group, by the loop's identity.
    let executors: [ObjectIdentifier: EventLoopTaskExecutor]

    static func builder(_ group: any EventLoopGroup, tls: NIOSSLContext? = nil, configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        let executors = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), EventLoopTaskExecutor($0)) })
        return HTTPServerBuilder { responder in
            LoopBoundHTTP1(http1: HTTP1Channel(responder: responder, configuration: configuration), tls: tls, executors: executors)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        guard let tls else { return http1.setup(channel: channel, logger: logger) }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
        }.flatMap {
            http1.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        guard let executor = executors[ObjectIdentifier(value.channel.eventLoop)] else {
            return await http1.handle(value: value, logger: logger)
        }
        await withTaskExecutorPreference(executor) { await http1.handle(value: value, logger: logger) }
    }
}

/// Runs the jobs of tasks that prefer it on one event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
