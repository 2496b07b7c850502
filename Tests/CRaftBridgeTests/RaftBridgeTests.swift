import CRaftBridge
import Foundation
import Synchronization
import Testing

/// The C bridge on its own: its loop thread, request completion, entry framing, and the socketpair
/// transport (two nodes whose streams are handed straight to each other).
@Suite struct RaftBridgeTests {
    @Test func singleNodeCommitsEntriesOfEveryPaddingLengthInOrder() async throws {
        let cluster = Cluster()
        defer { cluster.destroyAll() }
        let node = try await cluster.foundedLeader(1)

        // Lengths around the 8-byte padding the framing adds, and an empty entry.
        let entries: [[UInt8]] = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 1000].map { n in (0..<n).map { UInt8(($0 * 31 + n) & 0xFF) } }
        for (token, entry) in entries.enumerated() {
            entry.withUnsafeBytes { qr_propose(node, UInt64(token + 1), $0.baseAddress, $0.count) }
        }
        try await cluster.waitUntil { cluster.recorder(1).completions.count == entries.count }
        let completions = cluster.recorder(1).completions
        #expect(completions.allSatisfy { $0.status == 0 })
        let indexes = (1...entries.count).map { token in completions.first { $0.token == UInt64(token) }!.index }
        #expect(indexes == indexes.sorted() && Set(indexes).count == entries.count)
        try await cluster.waitUntil { cluster.recorder(1).applied.count == entries.count }
        let applied = cluster.recorder(1).applied
        #expect(applied.map(\.bytes) == entries)
        #expect(applied.map(\.index) == indexes)
        #expect(cluster.status(node).commit_index >= indexes.last!)
    }

    @Test func stateSurvivesARestartAndCannotBeBootstrappedTwice() async throws {
        let cluster = Cluster()
        defer { cluster.destroyAll() }
        var node = try await cluster.foundedLeader(1)
        let entry: [UInt8] = Array("kept".utf8)
        entry.withUnsafeBytes { qr_propose(node, 1, $0.baseAddress, $0.count) }
        try await cluster.waitUntil { cluster.recorder(1).completions.count == 1 }
        cluster.destroy(1)

        node = try cluster.create(1)
        var error = [CChar](repeating: 0, count: 256)
        #expect(qr_bootstrap(node, &error, error.count) == 10)  // RAFT_CANTBOOTSTRAP
        try cluster.start(node)
        try await cluster.waitUntil { cluster.recorder(1).applied.contains { $0.bytes == entry } }
        try await cluster.waitUntil { cluster.status(node).state == Int32(QR_LEADER) }
    }

    @Test func aNodeWithoutAClusterRefusesProposalsAndShutsDownCleanly() async throws {
        let cluster = Cluster()
        defer { cluster.destroyAll() }
        let node = try cluster.create(1)
        try cluster.start(node)
        let entry: [UInt8] = [1, 2, 3]
        entry.withUnsafeBytes { qr_propose(node, 7, $0.baseAddress, $0.count) }
        try await cluster.waitUntil { !cluster.recorder(1).completions.isEmpty }
        let completion = cluster.recorder(1).completions[0]
        #expect(completion.token == 7 && completion.status != 0)
        #expect(!String(cString: qr_strerror(completion.status)).isEmpty)
        #expect(cluster.recorder(1).applied.isEmpty)
        let iterations = cluster.status(node).loop_iterations
        try await cluster.waitUntil { cluster.status(node).loop_iterations > iterations }
    }

    @Test func createFailsWithAMessageOnAnUnusableDirectory() throws {
        let file = NSTemporaryDirectory() + "raft-bridge-file-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        defer { try? FileManager.default.removeItem(atPath: file) }
        var error = [CChar](repeating: 0, count: 256)
        let node = qr_create(file + "/inside", 1, "n1", qr_callbacks(), qr_options(), &error, error.count)
        #expect(node == nil)
        #expect(error[0] != 0)
    }

    @Test func twoNodesReplicateOverSocketpairStreams() async throws {
        let cluster = Cluster()
        defer { cluster.destroyAll() }
        let first = try cluster.create(1)
        let second = try cluster.create(2)
        #expect(try cluster.bootstrap(first) == 0)
        try cluster.start(first)
        try cluster.start(second)
        try await cluster.waitUntil { cluster.status(first).state == Int32(QR_LEADER) }
        // One configuration change at a time, as libraft requires.
        "n2".withCString { qr_add(first, 1, 2, $0) }
        try await cluster.waitUntil { cluster.recorder(1).completions.count == 1 }
        qr_assign(first, 2, 2, Int32(QR_VOTER))
        try await cluster.waitUntil { cluster.recorder(1).completions.count == 2 }
        #expect(cluster.recorder(1).completions.allSatisfy { $0.status == 0 })

        let entries: [[UInt8]] = (0..<20).map { Array("entry \($0)".utf8) }
        for (i, entry) in entries.enumerated() {
            entry.withUnsafeBytes { qr_propose(first, UInt64(100 + i), $0.baseAddress, $0.count) }
        }
        try await cluster.waitUntil { cluster.recorder(2).applied.count == entries.count }
        #expect(cluster.recorder(2).applied.map(\.bytes) == entries)
        #expect(cluster.recorder(2).applied.map(\.index) == cluster.recorder(1).applied.map(\.index))
        let status = cluster.status(second)
        #expect(status.leader_id == 1 && status.n_servers == 2)
    }
}

/// What one node's callbacks saw.
final class Recorder: @unchecked Sendable {
    struct Applied { var index: UInt64; var bytes: [UInt8] }
    struct Completion { var token: UInt64; var status: Int32; var index: UInt64 }
    let id: UInt64
    weak var cluster: Cluster?
    private let state = Mutex<(applied: [Applied], completions: [Completion])>(([], []))

    init(id: UInt64, cluster: Cluster) {
        self.id = id
        self.cluster = cluster
    }

    var applied: [Applied] { state.withLock { $0.applied } }
    var completions: [Completion] { state.withLock { $0.completions } }
    func apply(_ entry: Applied) { state.withLock { $0.applied.append(entry) } }
    func complete(_ completion: Completion) { state.withLock { $0.completions.append(completion) } }
}

/// Nodes in temporary directories, wired so that a stream one opens arrives at the other's
/// `qr_accept` as the far end of its socketpair.
final class Cluster: @unchecked Sendable {
    let root = NSTemporaryDirectory() + "raft-bridge-\(UUID().uuidString)"
    private let lock = NSLock()
    private var nodes: [UInt64: OpaquePointer] = [:]
    private var recorders: [UInt64: Recorder] = [:]

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func recorder(_ id: UInt64) -> Recorder { recorders[id]! }
    func node(_ id: UInt64) -> OpaquePointer? { lock.withLock { nodes[id] } }

    func create(_ id: UInt64) throws -> OpaquePointer {
        let recorder = Recorder(id: id, cluster: self)
        recorders[id] = recorder
        var callbacks = qr_callbacks()
        callbacks.context = Unmanaged.passUnretained(recorder).toOpaque()
        callbacks.apply = { context, index, data, count in
            let bytes = count == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: data, count: count))
            Unmanaged<Recorder>.fromOpaque(context!).takeUnretainedValue().apply(.init(index: index, bytes: bytes))
        }
        callbacks.snapshot = { _, _, _ in 1 }
        callbacks.restore = { _, _, _ in 1 }
        callbacks.connect = { context, peer, _, fd in
            let recorder = Unmanaged<Recorder>.fromOpaque(context!).takeUnretainedValue()
            guard let target = recorder.cluster?.node(peer) else {
                close(fd)
                return
            }
            "n\(recorder.id)".withCString { qr_accept(target, recorder.id, $0, fd) }
        }
        callbacks.completed = { context, token, status, index in
            Unmanaged<Recorder>.fromOpaque(context!).takeUnretainedValue().complete(.init(token: token, status: status, index: index))
        }
        var options = qr_options()
        options.election_timeout_ms = 1000
        options.heartbeat_timeout_ms = 100
        options.snapshot_threshold = 1024
        options.snapshot_trailing = 1024
        options.connect_retry_delay_ms = 50
        var error = [CChar](repeating: 0, count: 256)
        let dir = root + "/\(id)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        guard let node = qr_create(dir, id, "n\(id)", callbacks, options, &error, error.count) else {
            throw BridgeFailure("qr_create: \(String(cString: error))")
        }
        lock.withLock { nodes[id] = node }
        return node
    }

    /// A new node that founds a cluster of its own and has become its leader.
    func foundedLeader(_ id: UInt64) async throws -> OpaquePointer {
        let node = try create(id)
        let rv = try bootstrap(node)
        guard rv == 0 else { throw BridgeFailure("qr_bootstrap \(rv)") }
        try start(node)
        try await waitUntil { self.status(node).state == Int32(QR_LEADER) }
        return node
    }

    func bootstrap(_ node: OpaquePointer) throws -> Int32 {
        var error = [CChar](repeating: 0, count: 256)
        return qr_bootstrap(node, &error, error.count)
    }

    func start(_ node: OpaquePointer) throws {
        var error = [CChar](repeating: 0, count: 256)
        let rv = qr_start(node, &error, error.count)
        guard rv == 0 else { throw BridgeFailure("qr_start \(rv): \(String(cString: error))") }
    }

    func status(_ node: OpaquePointer) -> qr_status {
        var status = qr_status()
        qr_get_status(node, &status)
        return status
    }

    func destroy(_ id: UInt64) {
        if let node = lock.withLock({ nodes.removeValue(forKey: id) }) { qr_destroy(node) }
    }

    func destroyAll() {
        for id in lock.withLock({ Array(nodes.keys) }) { destroy(id) }
    }

    /// Polls `condition` for up to `seconds` (generous: suites run in parallel on a loaded machine).
    func waitUntil(_ seconds: Double = 60, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BridgeFailure("condition not met within \(seconds) s")
    }
}

struct BridgeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
