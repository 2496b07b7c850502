@testable import Consensus
import Foundation
import Synchronization
import Testing

/// A state machine that records entries, for checking what libraft delivered.
final class RecordingMachine: ConsensusStateMachine, @unchecked Sendable {
    private let state = Mutex<(entries: [String], applied: UInt64, restores: Int)>(([], 0, 0))

    var entries: [String] { state.withLock { $0.entries } }
    var restores: Int { state.withLock { $0.restores } }

    func apply(index: UInt64, entry: [UInt8]) {
        state.withLock {
            precondition(index > $0.applied, "entries out of order")
            $0.applied = index
            $0.entries.append(String(decoding: entry, as: UTF8.self))
        }
    }

    func snapshot() -> [UInt8] {
        Array(state.withLock { $0.entries.joined(separator: "\n") }.utf8)
    }

    func restore(_ snapshot: [UInt8]) throws {
        let text = String(decoding: snapshot, as: UTF8.self)
        state.withLock {
            $0.entries = text.isEmpty ? [] : text.components(separatedBy: "\n")
            $0.restores += 1
        }
    }
}

/// Real libraft engines in one process. Their streams are socketpairs handed straight from one
/// engine's connector to the other's accept, so no network is involved.
final class LocalCluster: @unchecked Sendable {
    let root: String
    private let engines = Mutex<[UInt64: RaftEngine]>([:])
    private(set) var machines: [UInt64: RecordingMachine] = [:]
    let options: RaftEngine.Options

    init(snapshotThreshold: UInt32 = 1024, trailing: UInt32 = 1024) throws {
        root = NSTemporaryDirectory() + "raft-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var options = RaftEngine.Options()
        // Generous for a loaded 2-core machine running suites in parallel; waits below are bounded by
        // conditions, not by these numbers.
        options.electionTimeoutMs = 1000
        options.heartbeatTimeoutMs = 100
        options.snapshotThreshold = snapshotThreshold
        options.snapshotTrailing = trailing
        options.connectRetryDelayMs = 50
        self.options = options
    }

    func engine(_ id: UInt64) -> RaftEngine? { engines.withLock { $0[id] } }

    @discardableResult
    func start(_ id: UInt64, _ mode: RaftEngine.Start) throws -> RaftEngine {
        let dir = root + "/\(id)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let machine = RecordingMachine()
        machines[id] = machine
        let engine = try RaftEngine(directory: dir, peerId: id, address: "peer-\(id)", machine: machine, options: options) {
            [weak self] peer, _, fd in
            guard let target = self?.engine(peer) else {
                close(fd)
                return
            }
            target.accept(peer: id, address: "peer-\(id)", fd: fd)
        }
        engines.withLock { $0[id] = engine }
        try engine.start(mode)
        return engine
    }

    func stop(_ id: UInt64) {
        let engine = engines.withLock { $0.removeValue(forKey: id) }
        engine?.shutdown()
    }

    func leader(among ids: [UInt64], within seconds: Double = 60) async throws -> RaftEngine {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            for id in ids {
                if let engine = engine(id), engine.status.role == .leader { return engine }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("no leader among \(ids)")
    }

    func waitUntil(_ seconds: Double = 60, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("condition not met within \(seconds) s")
    }

    deinit {
        for id in engines.withLock({ Array($0.keys) }) { stop(id) }
        try? FileManager.default.removeItem(atPath: root)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite(.serialized) struct RaftEngineTests {
    @Test func threeEnginesAgreeAndSurviveTheLossOfTheLeader() async throws {
        let cluster = try LocalCluster()
        let first = try cluster.start(1, .bootstrap)
        _ = try await cluster.leader(among: [1])
        for id: UInt64 in [2, 3] {
            try cluster.start(id, .join)
            try await first.addLearner(id: id, address: "peer-\(id)")
            try await first.promote(id: id)
        }
        #expect(first.status.members.map(\.role) == [.voter, .voter, .voter])
        for i in 0..<20 { _ = try await first.propose(Array("op-\(i)".utf8)) }
        try await cluster.waitUntil { cluster.machines.values.allSatisfy { $0.entries.count == 20 } }
        let expected = (0..<20).map { "op-\($0)" }
        for machine in cluster.machines.values { #expect(machine.entries == expected) }

        // The leader stops; the other two elect one of them and go on.
        cluster.stop(1)
        let second = try await cluster.leader(among: [2, 3])
        #expect(second.status.term > 1)
        _ = try await second.propose(Array("after".utf8))
        try await cluster.waitUntil { [2, 3].allSatisfy { cluster.machines[$0]!.entries.last == "after" } }

        // A follower refuses proposals and names the leader.
        let follower = cluster.engine(second.peerId == 2 ? 3 : 2)!
        await #expect(throws: ConsensusError.notLeader(nil)) { _ = try await follower.propose([1]) }
        #expect(follower.status.leader == second.peerId)
    }

    @Test func aLateJoinerInstallsASnapshot() async throws {
        let cluster = try LocalCluster(snapshotThreshold: 8, trailing: 2)
        let first = try cluster.start(1, .bootstrap)
        _ = try await cluster.leader(among: [1])
        for i in 0..<30 { _ = try await first.propose(Array("op-\(i)".utf8)) }
        try await cluster.waitUntil { first.status.snapshotIndex > 0 }
        try cluster.start(2, .join)
        try await first.addLearner(id: 2, address: "peer-2")
        try await first.promote(id: 2)
        try await cluster.waitUntil { cluster.machines[2]!.entries.count == 30 }
        #expect(cluster.machines[2]!.restores == 1)
        #expect(cluster.machines[2]!.entries == (0..<30).map { "op-\($0)" })
    }

    @Test func stateSurvivesARestart() async throws {
        let cluster = try LocalCluster(snapshotThreshold: 8, trailing: 2)
        let first = try cluster.start(1, .bootstrap)
        _ = try await cluster.leader(among: [1])
        for i in 0..<12 { _ = try await first.propose(Array("op-\(i)".utf8)) }
        cluster.stop(1)
        // Restarting with .bootstrap on existing state does not found a new cluster.
        let again = try cluster.start(1, .bootstrap)
        _ = try await cluster.leader(among: [1])
        _ = try await again.propose(Array("op-12".utf8))
        try await cluster.waitUntil { cluster.machines[1]!.entries.count == 13 }
        #expect(cluster.machines[1]!.entries == (0..<13).map { "op-\($0)" })
        #expect(again.status.members.map(\.id) == [1])
    }

    @Test func aDamagedSnapshotFileStopsTheStartWithItsReason() async throws {
        let cluster = try LocalCluster(snapshotThreshold: 8, trailing: 2)
        let first = try cluster.start(1, .bootstrap)
        _ = try await cluster.leader(among: [1])
        for i in 0..<12 { _ = try await first.propose(Array("op-\(i)".utf8)) }
        try await cluster.waitUntil { first.status.snapshotIndex > 0 }
        cluster.stop(1)
        let dir = cluster.root + "/1"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix("snapshot-") && !$0.hasSuffix(".meta") }
        #expect(!names.isEmpty)
        for name in names {
            // One digit of the state changed: still text the machine would read, so only the
            // checksum can tell.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            let at = try #require(bytes.firstRange(of: Array("op-3".utf8))).upperBound - 1
            bytes[at] = UInt8(ascii: "9")
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        #expect {
            try cluster.start(1, .bootstrap)
        } throws: { error in
            "\(error)".contains("the consensus snapshot does not restore: its checksum does not match its contents")
        }
        #expect(cluster.machines[1]!.restores == 0)
    }

    @Test func snapshotFramesCheckTheirStateAndReadBareOnes() throws {
        let state = Array("op-1\nop-2".utf8)
        let framed = SnapshotFrame.seal(state)
        #expect(try SnapshotFrame.open(framed) == state)
        #expect(try SnapshotFrame.open(state) == state)  // written before snapshots had a checksum
        var damaged = framed
        damaged[damaged.count - 1] ^= 1
        #expect(throws: SnapshotFrame.Damaged.self) { try SnapshotFrame.open(damaged) }
        #expect(throws: SnapshotFrame.Damaged.self) { try SnapshotFrame.open(Array(framed.prefix(6))) }
    }
}
