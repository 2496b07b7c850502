import NIOCore
import NIOPosix

/// Runs each job on the event loop whose thread enqueues it, or on the group's next loop when a
/// thread outside the group does.
///
/// A call's task prefers this executor (`UnaryConnection` starts it on the event loop that read the
/// request), so its handler, and the actors the handler calls, run on that loop's thread and the
/// answer is written without waking another thread. On Swift's shared pool instead, a request read
/// on an event loop wakes a pool thread to run the handler, and the response wakes the event loop
/// again to write it. Searches still spread over all cores: the segments and shards a request
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
