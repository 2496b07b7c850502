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

/// The writes this peer is sending to replicas, each with the catalogue index its routing was
/// current at: a transfer's source, before it stops forwarding, waits until no peer still has a
/// write on its way that was routed before the target took updates (``ConsensusManager/waitApplied(_:deadline:)``).
public final class RoutedWrites: Sendable {
    private struct State {
        /// The last catalogue entry applied, to local storage too (whether storage took it or
        /// not): what other peers wait for before they count on this peer seeing it.
        var applied: UInt64 = 0
        var next: UInt64 = 0
        /// Write → the index its routing was current at.
        var running: [UInt64: UInt64] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func applied(_ index: UInt64) { state.withLock { $0.applied = max($0.applied, index) } }

    var appliedIndex: UInt64 { state.withLock { $0.applied } }

    /// Registers a write about to be routed by the current layout; returns its token.
    func begin() -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.running[state.next] = state.applied
            return state.next
        }
    }

    func end(_ token: UInt64) { _ = state.withLock { $0.running.removeValue(forKey: token) } }

    /// Whether every write on its way was routed at `index` or later (or at the last index
    /// applied, when `index` is past it: entries of the consensus engine's own change no layout).
    public func allRouted(since index: UInt64) -> Bool {
        state.withLock { state in
            let wanted = min(index, state.applied)
            return state.running.values.allSatisfy { $0 >= wanted }
        }
    }
}
