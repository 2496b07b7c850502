public import QuiverJSON
public import QuiverModel
public import Shard

/// One shard of a collection: its id, its shard key (custom sharding), the peers holding its
/// replicas and their states. Part of the replicated catalogue: states change only through
/// consensus. A replica without a recorded state is `Active` (so catalogues written before states
/// existed read as they behaved).
public struct ShardInfo: Codable, Sendable, Equatable {
    public var id: UInt32
    public var key: ShardKey?
    public var peers: [UInt64]
    /// Replicas whose state is not `Active`.
    public private(set) var states: [UInt64: ReplicaState] = [:]

    public init(id: UInt32, key: ShardKey? = nil, peers: [UInt64], states: [UInt64: ReplicaState] = [:]) {
        self.id = id
        self.key = key
        self.peers = peers
        for (peer, state) in states { setState(state, of: peer) }
    }

    public func state(of peer: UInt64) -> ReplicaState { states[peer] ?? .active }

    public mutating func setState(_ state: ReplicaState, of peer: UInt64) {
        states[peer] = state == .active ? nil : state
    }

    /// The replica-set rules over this shard's replicas, seen from `peer`.
    public func replicaSet(thisPeer peer: UInt64) -> ShardReplicaSet {
        ShardReplicaSet(shardID: id, thisPeer: peer, states: Dictionary(uniqueKeysWithValues: peers.map { ($0, state(of: $0)) }))
    }

    enum CodingKeys: String, CodingKey { case id, key, peers, states }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(UInt32.self, forKey: .id)
        key = try c.decodeIfPresent(ShardKey.self, forKey: .key)
        peers = try c.decode([UInt64].self, forKey: .peers)
        for (peer, state) in try c.decodeIfPresent([String: ReplicaState].self, forKey: .states) ?? [:] {
            guard let id = UInt64(peer) else {
                throw JSONDecodingError(path: "states", message: "`\(peer)` is not a peer id")
            }
            setState(state, of: id)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(key, forKey: .key)
        try c.encode(peers, forKey: .peers)
        if !states.isEmpty { try c.encode(SortedMap(Dictionary(uniqueKeysWithValues: states.map { ("\($0.key)", $0.value) })), forKey: .states) }
    }
}

/// A shard transfer in the catalogue: `shard`'s data going from peer `from`'s replica to peer
/// `to`'s, by `method`; `sync` keeps the source's replica (a replication), else the source leaves
/// the shard once the target is `Active` (a move). Driven by the source peer.
public struct ShardTransfer: Codable, Sendable, Equatable, Hashable {
    public var shard: UInt32
    public var from: UInt64
    public var to: UInt64
    public var sync: Bool
    public var method: ShardTransferMethod
    /// The consensus index at which it started (set when the start applies): tells a transfer from
    /// a later one of the same shard between the same peers.
    public var started: UInt64

    public init(shard: UInt32, from: UInt64, to: UInt64, sync: Bool, method: ShardTransferMethod, started: UInt64 = 0) {
        self.shard = shard
        self.from = from
        self.to = to
        self.sync = sync
        self.method = method
        self.started = started
    }

    enum CodingKeys: String, CodingKey { case shard, from, to, sync, method, started }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(shard: try c.decode(UInt32.self, forKey: .shard), from: try c.decode(UInt64.self, forKey: .from),
                  to: try c.decode(UInt64.self, forKey: .to), sync: try c.decode(Bool.self, forKey: .sync),
                  method: try c.decode(ShardTransferMethod.self, forKey: .method),
                  started: try c.decodeIfPresent(UInt64.self, forKey: .started) ?? 0)
    }

    /// What names a transfer: its shard and its two peers.
    public struct Key: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
        public var shard: UInt32
        public var from: UInt64
        public var to: UInt64

        public init(shard: UInt32, from: UInt64, to: UInt64) {
            self.shard = shard
            self.from = from
            self.to = to
        }

        public var description: String { "shard \(shard) from \(from) to \(to)" }
    }

    public var key: Key { Key(shard: shard, from: from, to: to) }

    /// The target's state while the data arrives: `Partial` (it takes updates as they come) for a
    /// stream of records, else `Recovery` (it takes only the source's forced updates).
    public var targetState: ReplicaState { method == .streamRecords ? .partial : .recovery }
}

/// Where new shards go: decided once by the proposing peer and carried in the consensus operation,
/// so every peer applies the same placement.
public enum ShardPlacement {
    /// `count` new shards (ids from `firstID` on), each with `replicas` copies on distinct peers.
    /// Each copy goes to the peer holding the fewest shards of the collection so far (`existing` and
    /// the shards placed before it), ties broken by peer id, so `n × peers` shards put `n` on each
    /// peer and replicas spread evenly. More replicas than peers are capped at one per peer.
    public static func place(count: Int, replicas: Int, peers: [UInt64], firstID: UInt32, key: ShardKey?,
                             existing: [ShardInfo]) -> [ShardInfo] {
        let candidates = Array(Set(peers)).sorted()
        guard !candidates.isEmpty else { return [] }
        var load: [UInt64: Int] = Dictionary(uniqueKeysWithValues: candidates.map { ($0, 0) })
        for shard in existing { for peer in shard.peers where load[peer] != nil { load[peer]! += 1 } }
        var placed: [ShardInfo] = []
        for offset in 0..<count {
            var chosen: [UInt64] = []
            for _ in 0..<min(max(replicas, 1), candidates.count) {
                let peer = candidates.filter { !chosen.contains($0) }.min { (load[$0]!, $0) < (load[$1]!, $1) }!
                chosen.append(peer)
                load[peer]! += 1
            }
            placed.append(ShardInfo(id: firstID + UInt32(offset), key: key, peers: chosen))
        }
        return placed
    }

    /// The shards a collection starts with: `shard_number` unkeyed shards for automatic sharding,
    /// none for custom sharding (shards come with shard keys).
    public static func initial(_ config: CollectionConfig, peers: [UInt64]) -> [ShardInfo] {
        guard config.params.shardingMethod != .custom else { return [] }
        return place(count: Int(config.params.shardNumber), replicas: Int(config.params.replicationFactor), peers: peers,
                     firstID: 0, key: nil, existing: [])
    }
}

/// Which shard a point belongs to among a group of shards (the collection's shards, or one shard
/// key's): `fmix64(key) % n` over the group sorted by shard id, where `key` is the number of a
/// numeric id and `high ^ low` of a UUID's two 64-bit halves, and `fmix64` is MurmurHash3's
/// 64-bit finalizer. Stable across restarts, peers and versions: changing it moves data.
public enum PointRouting {
    public static func shardIndex(of id: PointID, shardCount: Int) -> Int {
        let key: UInt64 = switch id {
        case .number(let n): n
        case .uuid(let high, let low): high ^ low
        }
        var h = key
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return Int(h % UInt64(shardCount))
    }
}

/// A read that one peer runs on some of its local shards, on behalf of the peer that received the
/// request (one call per peer, whatever the number of shards).
public enum ShardRequest: Codable, Sendable {
    case retrieve(ids: [PointID], withPayload: WithPayload, withVector: WithVector)
    /// Points in id order from `offset`, at most `limit`.
    case scroll(offset: PointID?, limit: Int, filter: Filter?, withPayload: WithPayload, withVector: WithVector)
    case scrollOrdered(orderBy: OrderBy, limit: Int, filter: Filter?, withPayload: WithPayload, withVector: WithVector)
    case count(filter: Filter?)
    /// A vector search whose query is a checked, normalised vector; `limit` is the whole window.
    case search(SearchRequest)
    /// Every value's count (the receiving peer applies the limit after summing).
    case facet(key: String, filter: Filter?)
    case vector(id: PointID, name: String)
    /// Whether the peer has applied the start of `transfer`, as its target: answers `count(1)`.
    case transferTarget(ShardTransfer)
    /// The shard's recovery point (``LocalShard/recoveryPoint``): answers `clocks`.
    case recoveryPoint
}

public struct FacetCount: Codable, Sendable, Equatable {
    public var value: JSONValue
    public var count: Int

    public init(value: JSONValue, count: Int) {
        self.value = value
        self.count = count
    }
}

public enum ShardResponse: Codable, Sendable {
    case records([PointRecord])
    case points([ScoredPoint])
    case count(Int)
    case facets([FacetCount])
    case vector([Float]?)
    case clocks(ClockMap)
}

/// Reaches the shards of other peers; the p2p service implements it. Errors say whose fault they
/// are as ``StorageError`` does; an unreachable peer is ``StorageError/unavailable(_:)``.
public protocol ShardNetwork: Sendable {
    func read(_ request: ShardRequest, collection: String, shards: [UInt32], on peer: UInt64) async throws(StorageError) -> ShardResponse
    /// Applies each shard's operation (to the points matching `filter`, when given) on `peer`;
    /// returns the largest operation id.
    func update(_ operations: [UInt32: UpdateOperation], clocks: [UInt32: ClockTag], filter: Filter?, condition: UpdateCondition?,
                collection: String, wait: Bool, on peer: UInt64) async throws(StorageError) -> UpdateAck
    /// Hands an ordered write to `peer`, the shards' leader, which replicates it (see
    /// ``Collection/coordinate(_:filter:condition:wait:)``): its answer, the operation id or its
    /// error. Throws only when the leader was not reached.
    func forward(_ operations: [UInt32: UpdateOperation], filter: Filter?, condition: UpdateCondition?, collection: String, wait: Bool,
                 ordering: WriteOrdering, to peer: UInt64) async throws(StorageError) -> Result<UInt64, StorageError>
    /// Sends bytes `offset…` of the snapshot archive of a `snapshot` transfer to its target,
    /// `peer`, which puts the snapshot in place of its replica once it has the `final` bytes.
    func pushSnapshot(_ bytes: [UInt8], offset: UInt64, final: Bool, transfer: ShardTransfer, collection: String,
                      to peer: UInt64) async throws(StorageError)
    /// How long a read waits for a peer before asking another replica of its shards as well.
    var slowAfter: Duration { get }
    /// False while `peer` has failed or been slow since it last answered: reads ask other replicas first.
    func isResponsive(_ peer: UInt64) -> Bool
    /// Records that `peer` did not answer a read within ``slowAfter``.
    func noteSlow(_ peer: UInt64)
}

extension ShardNetwork {
    public func pushSnapshot(_ bytes: [UInt8], offset: UInt64, final: Bool, transfer: ShardTransfer, collection: String,
                             to peer: UInt64) async throws(StorageError) {
        throw .badRequest("Shard transfer method snapshot is not supported by this network")
    }

    public var slowAfter: Duration { .seconds(1) }
    public func isResponsive(_ peer: UInt64) -> Bool { true }
    public func noteSlow(_ peer: UInt64) {}
}

/// A peer's answer to its part of a replicated update: the largest operation id its shards gave,
/// the shards whose replica there rejected the update's clock tag (with that replica's tick), and
/// the shards whose replica failed the update (with why). Every other shard applied it.
public struct UpdateAck: Sendable, Equatable {
    public var operationID: UInt64
    public var rejected: [UInt32: UInt64]
    public var failed: [UInt32: StorageError]
    /// The failed shards whose replica takes no updates in its state as that peer knows it.
    public var refused: Set<UInt32>

    public init(operationID: UInt64 = 0, rejected: [UInt32: UInt64] = [:], failed: [UInt32: StorageError] = [:], refused: Set<UInt32> = []) {
        self.operationID = operationID
        self.rejected = rejected
        self.failed = failed
        self.refused = refused
    }

    /// Shard `shard`'s part of the answer, as the peer's answer for that shard alone.
    public func outcome(of shard: UInt32) -> Result<UInt64, StorageError> {
        if let error = failed[shard] { return .failure(error) }
        return .success(operationID)
    }
}

/// A collection's figures for `GET /telemetry` at details level 2 and above.
public struct CollectionTelemetry: Sendable {
    public struct Local: Sendable {
        public let figures: ShardTelemetry
        public let status: CollectionStatus
        public let optimizerError: String?
    }

    public struct Replica: Sendable {
        public let info: ShardInfo
        /// This peer's replica, when it holds one.
        public let local: Local?
    }

    public let name: String
    /// This peer: the replicas of a shard on other peers are its remote ones.
    public let peerID: UInt64
    public let initTimeMs: UInt64
    public let config: CollectionConfig
    public let payloadSchema: [String: PayloadFieldSchema]
    public let shards: [Replica]
}
