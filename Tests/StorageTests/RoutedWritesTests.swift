@testable import Storage
import Testing

/// The writes on their way to replicas that a transfer's source waits for before it ends.
@Suite struct RoutedWritesTests {
    @Test func aWriteRoutedBeforeAnIndexIsWaitedForUntilItEnds() {
        let writes = RoutedWrites()
        writes.applied(5)
        let old = writes.begin()
        writes.applied(7)
        let new = writes.begin()
        #expect(writes.allRouted(since: 5))
        #expect(!writes.allRouted(since: 7))  // the first write was routed by the layout of entry 5
        writes.end(old)
        #expect(writes.allRouted(since: 7))
        // An index past the last one applied (an entry of the engine's own) asks for writes
        // routed at the last one applied.
        #expect(writes.allRouted(since: 9))
        writes.end(new)
        #expect(writes.allRouted(since: 100))
    }
}
