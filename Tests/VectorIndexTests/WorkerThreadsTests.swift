import CVectorKernels
import Foundation
import Testing
import VectorIndex

@Suite struct WorkerThreadsTests {
    final class Seen: @unchecked Sendable {
        let lock = NSLock()
        var niceness = [Int32](repeating: -100, count: 3)
    }

    /// Index builds run below request handling: every thread `WorkerThreads` starts has a higher
    /// nice value than the calling thread, which keeps its own; a build thread started from
    /// another gets the same value, not a lower priority again.
    @Test func workerThreadsRunAtALowerPriority() async {
        #if os(Linux)
        let caller = quiver_thread_niceness()
        let ran = await WorkerThreads.run { () -> Result<Int32, Never> in .success(quiver_thread_niceness()) }
        #expect(try! ran.get() > caller)
        let seen = Seen()
        WorkerThreads.forEach(3) { worker in
            let value = quiver_thread_niceness()
            seen.lock.withLock { seen.niceness[worker] = value }
        }
        #expect(seen.niceness[0] == caller && seen.niceness[1] > caller && seen.niceness[2] > caller)
        #expect(quiver_thread_niceness() == caller)
        let nested = await WorkerThreads.run { () -> Result<[Int32], Never> in
            let inner = Seen()
            WorkerThreads.forEach(2) { worker in
                let value = quiver_thread_niceness()
                inner.lock.withLock { inner.niceness[worker] = value }
            }
            return .success(Array(inner.niceness.prefix(2)))
        }
        #expect(try! nested.get() == [try! ran.get(), try! ran.get()])
        #endif
    }
}
