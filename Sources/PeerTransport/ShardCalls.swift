import GRPCCore
import QuiverJSON
import QuiverModel
public import Shard
public import Storage

/// Shard reads and writes between peers: one `ShardRead` or `ShardUpdate` call per peer and
/// request, carrying every shard that peer answers for.
enum ShardRPC {
    static let read = MethodDescriptor(fullyQualifiedService: PeerRPC.service, method: "ShardRead", type: .unary)
    static let update = MethodDescriptor(fullyQualifiedService: PeerRPC.service, method: "ShardUpdate", type: .unary)
    /// Reads and writes may take longer than control calls (a large batch fsynced, an exact search).
    static let timeout: Duration = .seconds(60)
}

struct ShardReadRequest: Codable, Sendable {
    var collection: String
    var shards: [UInt32]
    var request: ShardRequest
}

/// `ShardUpdate` body: `[u32 header length][header JSON][operations]`, where each shard's
/// operation is in the WAL's binary form (`OperationCodec`), lengths in the header.
struct ShardUpdateHeader: Codable, Sendable {
    var collection: String
    var wait: Bool
    var filter: Filter?
    var condition: UpdateCondition?
    var shards: [UInt32]
    var lengths: [Int]
    /// Set on a write forwarded to the shards' leader, which replicates it.
    var ordering: String?
    /// A forwarded write's time on the leader, ms: less than the sender waits, so the leader
    /// answers (also about replicas that did not) before the sender gives up on it.
    var timeoutMs: UInt64?
    /// The sender's clock tag for each shard of `shards` that has one.
    var clocks: [ClockTag?]?
}

/// `ShardUpdate` answer: the largest operation id, the shards whose replica rejected the update's
/// clock tag with the replica's tick, and the shards whose replica failed it, with the error as a
/// gRPC status code and message (as a failed call carries it).
struct ShardUpdateReply: Codable, Sendable {
    struct Rejected: Codable, Sendable {
        var shard: UInt32
        var tick: UInt64
    }

    struct Failed: Codable, Sendable {
        var shard: UInt32
        var code: Int
        var message: String
        /// The status's `qdrant-insufficient-storage` trailer (a full disk or a quota, not a rate limit).
        var insufficientStorage: Bool?
    }

    var index: UInt64
    var rejected: [Rejected]?
    var failed: [Failed]?
    /// Failed shards whose replica takes no updates in its state.
    var refused: [UInt32]?

    init(_ ack: UpdateAck) {
        index = ack.operationID
        rejected = ack.rejected.isEmpty ? nil : ack.rejected.sorted { $0.key < $1.key }.map { Rejected(shard: $0.key, tick: $0.value) }
        failed = ack.failed.isEmpty ? nil : ack.failed.sorted { $0.key < $1.key }.map { shard, error in
            let status = PeerErrors.rpcError(error)
            let storage = status.metadata[stringValues: PeerErrors.insufficientStorageKey].contains("1")
            return Failed(shard: shard, code: status.code.rawValue, message: status.message, insufficientStorage: storage ? true : nil)
        }
        refused = ack.refused.isEmpty ? nil : ack.refused.sorted()
    }

    /// The answer of peer `peer`.
    func ack(from peer: String) -> UpdateAck {
        var failures: [UInt32: StorageError] = [:]
        for failure in failed ?? [] {
            let code = Status.Code(rawValue: failure.code).flatMap { RPCError.Code($0) } ?? .internalError
            let metadata: Metadata = failure.insufficientStorage == true ? [PeerErrors.insufficientStorageKey: "1"] : [:]
            failures[failure.shard] = PeerErrors.storageError(RPCError(code: code, message: failure.message, metadata: metadata), peer: peer)
        }
        return UpdateAck(operationID: index, rejected: Dictionary((rejected ?? []).map { ($0.shard, $0.tick) }) { $1 }, failed: failures,
                         refused: Set(refused ?? []))
    }
}

enum ShardUpdateCodec {
    static func encode(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag] = [:], filter: Filter?, condition: UpdateCondition?,
                       collection: String, wait: Bool, ordering: WriteOrdering? = nil, timeout: Duration? = nil) throws(StorageError) -> [UInt8] {
        let ids = operations.keys.sorted()
        let bodies = ids.map { OperationCodec.encode(operations[$0]!) }
        let header: [UInt8]
        do {
            header = try JSONValueEncoder().encodeBytes(ShardUpdateHeader(collection: collection, wait: wait, filter: filter, condition: condition, shards: ids,
                                                                           lengths: bodies.map(\.count), ordering: ordering?.rawValue,
                                                                           timeoutMs: timeout.map { UInt64($0.wholeMilliseconds) },
                                                                           clocks: clocks.isEmpty ? nil : ids.map { clocks[$0] }))
        } catch {
            throw .serviceError("cannot encode a shard update: \(error)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(4 + header.count + bodies.reduce(0) { $0 + $1.count })
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { out.append(contentsOf: $0) }
        out += header
        for body in bodies { out += body }
        return out
    }

    static func decode(_ bytes: [UInt8]) throws(StorageError) -> (ShardUpdateHeader, [UInt32: UpdateOperation]) {
        guard bytes.count >= 4 else { throw .badInput("truncated shard update") }
        let headerLength = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard bytes.count >= 4 + headerLength else { throw .badInput("truncated shard update") }
        let header: ShardUpdateHeader
        do {
            header = try JSONValueDecoder().decode(ShardUpdateHeader.self, from: Array(bytes[4..<(4 + headerLength)]))
        } catch {
            throw .badInput("bad shard update header: \(error)")
        }
        guard header.shards.count == header.lengths.count, header.clocks.map({ $0.count == header.shards.count }) ?? true else {
            throw .badInput("bad shard update header")
        }
        var operations: [UInt32: UpdateOperation] = [:]
        var position = 4 + headerLength
        for (shard, length) in zip(header.shards, header.lengths) {
            guard length >= 0, position + length <= bytes.count else { throw .badInput("truncated shard update") }
            do {
                operations[shard] = try OperationCodec.decode(Array(bytes[position..<(position + length)]))
            } catch {
                throw .badInput("bad operation for shard \(shard): \(error.reason)")
            }
            position += length
        }
        return (header, operations)
    }
}

extension PeerNetwork: ShardNetwork {
    func address(of peer: UInt64) throws(StorageError) -> String {
        guard let address = resolve(peer) else { throw .unavailable("peer \(peer) is not a known member of the cluster") }
        return address
    }

    public func read(_ request: ShardRequest, collection: String, shards: [UInt32], on peer: UInt64) async throws(StorageError) -> ShardResponse {
        let budget = try RequestDeadline.budget(ShardRPC.timeout, for: "read")
        return try await Self.withinDeadline { () async throws(StorageError) in
            try await callRaw(address(of: peer), ShardRPC.read, ShardReadRequest(collection: collection, shards: shards, request: request),
                              serializer: JSONCoder<ShardReadRequest>(), deserializer: JSONCoder<ShardResponse>(), timeout: budget,
                              waitForReady: false)
        }
    }

    public func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                       collection: String, wait: Bool, on peer: UInt64) async throws(StorageError) -> UpdateAck {
        try await post(ShardUpdateCodec.encode(operations, clocks: clocks, filter: filter, condition: condition, collection: collection, wait: wait),
                       to: peer, budget: RequestDeadline.budget(ShardRPC.timeout, share: 0.8, for: "update"))
    }

    public func forward(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String,
                        wait: Bool, ordering: WriteOrdering, to peer: UInt64) async throws(StorageError) -> Result<UInt64, StorageError> {
        // The leader gets 80% of this call's time for its own calls to the replicas.
        let budget = try RequestDeadline.budget(ShardRPC.timeout, for: "update")
        let ack = try await post(ShardUpdateCodec.encode(operations, filter: filter, condition: condition, collection: collection, wait: wait,
                                                         ordering: ordering, timeout: budget * 0.8), to: peer, budget: budget)
        if let (_, error) = ack.failed.min(by: { $0.key < $1.key }) { return .failure(error) }
        return .success(ack.operationID)
    }

    /// One `ShardUpdate` call of at most `budget`; answers the largest operation id. A replica's
    /// update gets 80% of the request's time left, so that a replica that does not answer is
    /// marked Dead within the request's timeout.
    private func post(_ body: [UInt8], to peer: UInt64, budget: Duration) async throws(StorageError) -> UpdateAck {
        try await Self.withinDeadline { () async throws(StorageError) in
            let response: ShardUpdateReply = try await callRaw(address(of: peer), ShardRPC.update, body, serializer: RawCoder(),
                                                               deserializer: JSONCoder<ShardUpdateReply>(), timeout: budget, waitForReady: false)
            return response.ack(from: "\(peer)")
        }
    }

    /// A call's failure, as the request's timeout when the request's deadline has passed.
    static func withinDeadline<T>(_ call: () async throws(StorageError) -> T) async throws(StorageError) -> T {
        do {
            return try await call()
        } catch {
            if let deadline = RequestDeadline.current, deadline <= .now { throw .timeout("Operation timed out: \(error)") }
            throw error
        }
    }

    public var slowAfter: Duration { timeouts.call }

    public func isResponsive(_ peer: UInt64) -> Bool {
        guard let uri = resolve(peer) else { return false }
        return sendFailures[uri] == nil
    }

    public func noteSlow(_ peer: UInt64) {
        guard let uri = resolve(peer) else { return }
        noteFailure(uri, PeerSlow(after: timeouts.call))
    }
}

struct PeerSlow: Error, CustomStringConvertible {
    let after: Duration
    var description: String { "no answer to a read within \(after.wholeMilliseconds) ms" }
}

extension PeerService {
    func registerShardMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let toc = manager.toc
        unary(&router, ShardRPC.read, JSONCoder<ShardReadRequest>(), JSONCoder<ShardResponse>()) { request, _ in
            try await toc.collection(request.collection).runLocal(request.request, shards: request.shards)
        }
        unary(&router, ShardRPC.update, RawCoder(), JSONCoder<ShardUpdateReply>()) { bytes, _ in
            // At write priority, as on the peer the write came to (see WritePriority).
            try await WritePriority.run { () async throws -> ShardUpdateReply in
                let (header, operations) = try ShardUpdateCodec.decode(bytes)
                let collection = try await toc.collection(header.collection)
                if header.ordering != nil {
                    // The leader's failure is its answer, told apart from a leader that was not reached.
                    do {
                        let index = try await RequestDeadline.with(header.timeoutMs.map { .milliseconds(Int64($0)) }) { () async throws(StorageError) in
                            try await collection.coordinate(operations, filter: header.filter, condition: header.condition, wait: header.wait)
                        }
                        return ShardUpdateReply(UpdateAck(operationID: index))
                    } catch let error as StorageError {
                        return ShardUpdateReply(UpdateAck(failed: [header.shards.min() ?? 0: error]))
                    }
                }
                var clocks: [UInt32: ClockTag] = [:]
                for (shard, clock) in zip(header.shards, header.clocks ?? []) { clocks[shard] = clock }
                return ShardUpdateReply(try await collection.applyLocal(operations, clocks: clocks, filter: header.filter, condition: header.condition,
                                                                        wait: header.wait))
            }
        }
    }
}

/// `ShardSnapshotChunk`: bytes of a `snapshot` transfer's archive, pushed by the source to the
/// target in order. Body: `[u32 header length][header JSON][bytes]`.
enum SnapshotChunkRPC {
    static let method = MethodDescriptor(fullyQualifiedService: PeerRPC.service, method: "ShardSnapshotChunk", type: .unary)
    /// The last chunk's answer waits for the snapshot to be extracted and put in place.
    static let finalTimeout: Duration = .seconds(600)

    struct Header: Codable, Sendable {
        var collection: String
        var transfer: ShardTransfer
        var offset: UInt64
        var final: Bool
    }

    struct Reply: Codable, Sendable {
        var received: UInt64
    }

    static func encode(_ header: Header, _ bytes: [UInt8]) throws(StorageError) -> [UInt8] {
        let encoded: [UInt8]
        do {
            encoded = try JSONValueEncoder().encodeBytes(header)
        } catch {
            throw .serviceError("cannot encode a snapshot chunk: \(error)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(4 + encoded.count + bytes.count)
        withUnsafeBytes(of: UInt32(encoded.count).littleEndian) { out.append(contentsOf: $0) }
        return out + encoded + bytes
    }

    static func decode(_ body: [UInt8]) throws(StorageError) -> (Header, [UInt8]) {
        guard body.count >= 4 else { throw .badInput("truncated snapshot chunk") }
        let length = Int(UInt32(body[0]) | UInt32(body[1]) << 8 | UInt32(body[2]) << 16 | UInt32(body[3]) << 24)
        guard body.count >= 4 + length else { throw .badInput("truncated snapshot chunk") }
        do {
            return (try JSONValueDecoder().decode(Header.self, from: Array(body[4..<(4 + length)])), Array(body[(4 + length)...]))
        } catch {
            throw .badInput("bad snapshot chunk header: \(error)")
        }
    }
}

extension PeerNetwork {
    public func pushSnapshot(_ bytes: [UInt8], offset: UInt64, final: Bool, transfer: ShardTransfer, collection: String,
                             to peer: UInt64) async throws(StorageError) {
        let body = try SnapshotChunkRPC.encode(.init(collection: collection, transfer: transfer, offset: offset, final: final), bytes)
        _ = try await callRaw(address(of: peer), SnapshotChunkRPC.method, body, serializer: RawCoder(),
                              deserializer: JSONCoder<SnapshotChunkRPC.Reply>(),
                              timeout: final ? SnapshotChunkRPC.finalTimeout : ShardRPC.timeout, waitForReady: false)
    }
}

extension PeerService {
    func registerSnapshotChunks<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let toc = manager.toc
        unary(&router, SnapshotChunkRPC.method, RawCoder(), JSONCoder<SnapshotChunkRPC.Reply>()) { body, _ in
            let (header, bytes) = try SnapshotChunkRPC.decode(body)
            try await toc.receiveTransferSnapshot(header.collection, transfer: header.transfer, offset: header.offset, bytes: bytes,
                                                  final: header.final)
            return SnapshotChunkRPC.Reply(received: header.offset + UInt64(bytes.count))
        }
    }
}
