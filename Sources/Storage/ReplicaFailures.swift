public import QuiverModel
import Synchronization

/// Where collections report a replica that failed a write: consensus, which marks it `Dead`.
public protocol ReplicaFailureReporter: AnyObject, Sendable {
    /// Proposes `Dead` for `peer`'s replica of `shard`, if it is still in state `from` (any state
    /// when nil). Failures to propose are the reporter's to log; the collection reports again.
    func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?) async
}

/// The reporter, bound once consensus exists (after collections are loaded); until then, and on a
/// single node, reports go nowhere.
final class ReplicaFailureRelay: Sendable {
    private let target = Mutex<(any ReplicaFailureReporter)?>(nil)

    func bind(_ reporter: any ReplicaFailureReporter) { target.withLock { $0 = reporter } }

    func replicaFailed(collection: String, shard: UInt32, peer: UInt64, from: ReplicaState?) async {
        guard let reporter = target.withLock({ $0 }) else { return }
        await reporter.replicaFailed(collection: collection, shard: shard, peer: peer, from: from)
    }
}
