/// The instant by which the request being served must be answered: its `timeout` parameter, set by
/// the edge around one request. A task-local value, so every call the request makes to other peers
/// (in child tasks too) is bounded by it without passing it through each signature.
public enum RequestDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// Runs `body` with a deadline `timeout` from now (none when `timeout` is nil).
    public static func with<T, E: Error>(_ timeout: Duration?, _ body: () async throws(E) -> T) async throws(E) -> T {
        guard let timeout else { return try await body() }
        let result: Result<T, E> = await $current.withValue(.now + timeout) {
            do throws(E) { return .success(try await body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The time a call may take: `limit`, or `share` of the time left when the request's deadline
    /// comes sooner. Throws when the deadline has passed.
    public static func budget(_ limit: Duration, share: Double = 1, for operation: String) throws(StorageError) -> Duration {
        guard let deadline = current else { return limit }
        let left = deadline - .now
        guard left > .zero else { throw .timeout("Operation '\(operation)' timed out") }
        return min(limit, left * share)
    }
}
