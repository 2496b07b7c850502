/// Writes run as high-priority tasks from the service call on (collection lookup, clocks, the hops
/// between actors, the log append). The executor's threads take queued jobs by priority, so those
/// steps do not queue behind the search jobs that fill the threads under load; a search job runs
/// for up to milliseconds and several are queued at once. (Reading the request body before, and
/// writing the response after, still run at the handler's priority.) Measured with
/// `quiver-bench rest --write-seconds` (see the README): a 100-point `wait=true` upsert's median
/// under 4 searching clients fell from 26–28 ms to 8–20 ms.
public enum WritePriority {
    /// Runs `body` in a task of high priority and returns its result. The task inherits the
    /// caller's task-local values (the request deadline, which bounds its waits); cancelling the
    /// caller does not cancel it, so a write either completes or fails on its own terms.
    public static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) async throws(E) -> T {
        try await Task(priority: .high) { () async -> Result<T, E> in
            do throws(E) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }.value.get()
    }
}
