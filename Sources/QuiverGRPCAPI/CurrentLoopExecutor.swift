import NIOCore
import NIOPosix

/// Runs each job on the event loop whose thread enqueues it, or on the group's next loop when a
/// thread outside the group does.
///
/// grpc-swift runs every call in a task of Swift's shared pool: a request read on an event loop
/// wakes a pool thread to run the handler, and the response wakes the event loop again to write
/// it. The server's tasks prefer this executor instead (`GRPCServer.serve()` runs under it, and
/// connection and call tasks inherit the preference). A call's task is started and resumed by the
/// event loop that reads its connection, so its handler, and the actors the handler calls, run on
/// that loop's thread. Searches still spread over all cores: the segments and shards a request
/// searches in parallel run on the shared pool (`LocalShard.inParallel`, `Collection.searchLocal`).
final class CurrentLoopExecutor: TaskExecutor {
    let group: any EventLoopGroup

    init(group: any EventLoopGroup) {
        self.group = group
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
