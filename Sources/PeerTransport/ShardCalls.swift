import GRPCCore
import QuiverJSON
import QuiverModel
import Shard
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
}

enum ShardUpdateCodec {
    static func encode(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String,
                       wait: Bool, ordering: WriteOrdering? = nil) throws(StorageError) -> [UInt8] {
        let ids = operations.keys.sorted()
        let bodies = ids.map { OperationCodec.encode(operations[$0]!) }
        let header: [UInt8]
        do {
            header = try JSONValueEncoder().encodeBytes(ShardUpdateHeader(collection: collection, wait: wait, filter: filter, condition: condition, shards: ids,
                                                                           lengths: bodies.map(\.count), ordering: ordering?.rawValue))
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
        guard header.shards.count == header.lengths.count else { throw .badInput("bad shard update header") }
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

    public func update(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String,
                       wait: Bool, on peer: UInt64) async throws(StorageError) -> UInt64 {
        try await post(ShardUpdateCodec.encode(operations, filter: filter, condition: condition, collection: collection, wait: wait), to: peer)
    }

    public func forward(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String,
                        wait: Bool, ordering: WriteOrdering, to peer: UInt64) async throws(StorageError) -> UInt64 {
        try await post(ShardUpdateCodec.encode(operations, filter: filter, condition: condition, collection: collection, wait: wait,
                                               ordering: ordering), to: peer)
    }

    /// One `ShardUpdate` call; answers the largest operation id. It gets 80% of the request's time
    /// left, so that a replica that does not answer is marked Dead within the request's timeout.
    private func post(_ body: [UInt8], to peer: UInt64) async throws(StorageError) -> UInt64 {
        let budget = try RequestDeadline.budget(ShardRPC.timeout, share: 0.8, for: "update")
        return try await Self.withinDeadline { () async throws(StorageError) in
            let response: IndexMessage = try await callRaw(address(of: peer), ShardRPC.update, body, serializer: RawCoder(),
                                                           deserializer: JSONCoder<IndexMessage>(), timeout: budget, waitForReady: false)
            return response.index
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
        unary(&router, ShardRPC.update, RawCoder(), JSONCoder<IndexMessage>()) { bytes, _ in
            let (header, operations) = try ShardUpdateCodec.decode(bytes)
            let collection = try await toc.collection(header.collection)
            if header.ordering != nil {
                return IndexMessage(index: try await collection.coordinate(operations, filter: header.filter, condition: header.condition, wait: header.wait))
            }
            return IndexMessage(index: try await collection.applyLocal(operations, filter: header.filter, condition: header.condition, wait: header.wait))
        }
    }
}
