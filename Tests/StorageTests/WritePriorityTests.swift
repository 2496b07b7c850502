@testable import Storage
import Testing

@Suite struct WritePriorityTests {
    @Test func runsAtHighPriorityWithTheCallersDeadlineAndItsTypedError() async throws {
        let (priority, deadline, callers) = try await RequestDeadline.with(.seconds(30)) { () async throws(StorageError) in
            let (priority, deadline) = try await WritePriority.run { () async throws(StorageError) in (Task.currentPriority, RequestDeadline.current) }
            return (priority, deadline, RequestDeadline.current)
        }
        #expect(priority == .high)
        #expect(deadline != nil && deadline == callers)
        // A caller at low priority still gets its write run at high priority.
        let fromLow = await Task(priority: .low) { await WritePriority.run { () async in Task.currentPriority } }.value
        #expect(fromLow == .high)
        await #expect(throws: StorageError.timeout("late")) {
            try await WritePriority.run { () async throws(StorageError) -> Int in throw .timeout("late") }
        }
    }
}
