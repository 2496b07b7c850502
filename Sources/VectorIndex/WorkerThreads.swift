import CVectorKernels
import Foundation

/// Long CPU-bound work (segment builds, graph construction) on threads of its own. Swift
/// concurrency runs every task on a pool of about one thread per core, shared with libdispatch's
/// global queues; work that blocks those threads for minutes (or `DispatchQueue.concurrentPerform`,
/// which takes the pool's other threads) leaves no thread for request handlers or consensus, and a
/// peer stops answering until the build ends. These threads are scheduled by the kernel beside
/// the pool's, which keeps running. They run at a lower priority (nice `niceSteps` above the process's):
/// when requests and builds want the cores at once, requests get most of them and builds the rest.
public enum WorkerThreads {
    static let niceSteps: Int32 = 5

    /// Runs `body(worker)` for workers `0..<count`, each on its own thread (worker 0 on the
    /// calling thread), and returns once all have returned.
    public static func forEach(_ count: Int, _ body: @escaping (Int) -> Void) {
        guard count > 1 else {
            body(0)
            return
        }
        // Every thread is waited for before this returns: nothing runs `body` concurrently with the caller after.
        let shared = Unchecked(body)
        let done = DispatchSemaphore(value: 0)
        for worker in 1..<count {
            let thread = Thread {
                _ = quiver_lower_thread_priority(niceSteps)
                shared.value(worker)
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        body(0)
        for _ in 1..<count { done.wait() }
    }

    /// Runs `work` on a new thread; the calling task waits without holding a pool thread.
    public static func run<Value: Sendable, Failure: Error>(_ work: @escaping @Sendable () -> Result<Value, Failure>) async -> Result<Value, Failure> {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                _ = quiver_lower_thread_priority(niceSteps)
                continuation.resume(returning: work())
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// A value handed to a worker thread that only that thread uses meanwhile.
public struct Unchecked<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
