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
///
/// With `toShard` the data goes into another shard's replica on `to` (`replicate_points`, and the
/// transfers of a resharding): only the points matching `filter` are sent and forwarded, into a
/// replica that keeps its own points and its state.
public struct ShardTransfer: Codable, Sendable, Equatable, Hashable {
    public var shard: UInt32
    public var from: UInt64
    public var to: UInt64
    public var sync: Bool
    public var method: ShardTransferMethod
    /// The consensus index at which it started (set when the start applies): tells a transfer from
    /// a later one of the same shard between the same peers.
    public var started: UInt64
    /// The receiving shard, when not `shard`.
    public var toShard: UInt32?
    /// The points sent, when not all.
    public var filter: Filter?

    public init(shard: UInt32, from: UInt64, to: UInt64, sync: Bool, method: ShardTransferMethod, started: UInt64 = 0,
                toShard: UInt32? = nil, filter: Filter? = nil) {
        self.shard = shard
        self.from = from
        self.to = to
        self.sync = sync
        self.method = method
        self.started = started
        self.toShard = toShard == shard ? nil : toShard
        self.filter = filter
    }

    enum CodingKeys: String, CodingKey { case shard, from, to, sync, method, started, toShard = "to_shard", filter }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(shard: try c.decode(UInt32.self, forKey: .shard), from: try c.decode(UInt64.self, forKey: .from),
                  to: try c.decode(UInt64.self, forKey: .to), sync: try c.decode(Bool.self, forKey: .sync),
                  method: try c.decode(ShardTransferMethod.self, forKey: .method),
                  started: try c.decodeIfPresent(UInt64.self, forKey: .started) ?? 0,
                  toShard: try c.decodeIfPresent(UInt32.self, forKey: .toShard), filter: try c.decodeIfPresent(Filter.self, forKey: .filter))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(shard, forKey: .shard)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(sync, forKey: .sync)
        try c.encode(method, forKey: .method)
        try c.encode(started, forKey: .started)
        try c.encodeIfPresent(toShard, forKey: .toShard)
        try c.encodeIfPresent(filter, forKey: .filter)
    }

    /// (The filter is left out: transfers that differ only in it hash alike.)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(started)
        hasher.combine(method)
    }

    /// What names a transfer: its shard, its two peers, and the receiving shard when another.
    public struct Key: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
        public var shard: UInt32
        public var from: UInt64
        public var to: UInt64
        public var toShard: UInt32?

        public init(shard: UInt32, from: UInt64, to: UInt64, toShard: UInt32? = nil) {
            self.shard = shard
            self.from = from
            self.to = to
            self.toShard = toShard == shard ? nil : toShard
        }

        public var description: String {
            "shard \(shard)\(toShard.map { " into shard \($0)" } ?? "") from \(from) to \(to)"
        }
    }

    public var key: Key { Key(shard: shard, from: from, to: to, toShard: toShard) }

    /// The shard whose replica on `to` receives the data.
    public var targetShard: UInt32 { toShard ?? shard }

    /// The data goes into another shard (which keeps its points and its replica's state).
    public var isCrossShard: Bool { toShard != nil }

    /// The target's state while the data arrives: `Partial` (it takes updates as they come) for a
    /// stream of records, else `Recovery` (it takes only the source's forced updates).
    public var targetState: ReplicaState { method == .streamRecords ? .partial : .recovery }
}

/// How a collection's points are routed to its shards: its ring, and the resharding under way.
public struct ShardRouting: Codable, Sendable, Equatable {
    public var ring: PointRing
    public var resharding: Resharding?

    public init(ring: PointRing, resharding: Resharding? = nil) {
        self.ring = ring
        self.resharding = resharding
    }

    /// Collections created before rings were recorded.
    public static let legacy = ShardRouting(ring: .modulo)
}

/// A change of the number of shards of a collection (or of one shard key) in place. Scaling up
/// adds shard `shard` (the highest id) with one replica on `peer`; scaling down removes the
/// highest shard of the group, `shard`. Stages, each a consensus change:
/// - `preparing`: nothing changes yet but the new shard's replica, opened by its peer (every peer
///   applies this before writes reach it);
/// - `migrating`: a point's writes go to its shard under the old count and under the new one;
///   reads use the old count; the points that change shard are copied to their new shard by
///   `resharding_stream_records` transfers, one source shard at a time;
/// - `readCommitted`: reads use the new count (a scaled-up shard turns `Active`);
/// - `writeCommitted`: writes go to the new shard only;
/// - `cleaned`: every peer has deleted, from its replicas, the points their shard no longer owns;
/// - then the resharding ends (a scaled-down shard is dropped).
/// Until it ends, each shard read answers only for the points it owns under the count reads use,
/// so no point is seen twice or missed. A scale-down aborted while `migrating` goes through
/// `aborting` (writes stop going to the new shards) and `aborted` (once every peer has applied
/// that, the copies made so far are deleted), then it ends.
public struct Resharding: Codable, Sendable, Equatable {
    public enum Stage: String, Codable, Sendable {
        case preparing, migrating, readCommitted = "read_committed", writeCommitted = "write_committed", cleaned, aborting, aborted
    }

    /// A copy done: the points of shard `from` that move to shard `to`, into `to`'s replica on `peer`.
    public struct Copy: Codable, Sendable, Equatable, Hashable {
        public var from: UInt32
        public var to: UInt32
        public var peer: UInt64
    }

    public var direction: ReshardingDirection
    public var shard: UInt32
    public var peer: UInt64
    public var key: ShardKey?
    public var stage: Stage
    /// The copies done so far (`migrating`).
    public var copied: [Copy] = []

    public init(direction: ReshardingDirection, shard: UInt32, peer: UInt64, key: ShardKey?, stage: Stage = .preparing) {
        self.direction = direction
        self.shard = shard
        self.peer = peer
        self.key = key
        self.stage = stage
    }

    enum CodingKeys: String, CodingKey { case direction, shard, peer, key, stage, copied }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(direction: try c.decode(ReshardingDirection.self, forKey: .direction), shard: try c.decode(UInt32.self, forKey: .shard),
                  peer: try c.decode(UInt64.self, forKey: .peer), key: try c.decodeIfPresent(ShardKey.self, forKey: .key),
                  stage: try c.decode(Stage.self, forKey: .stage))
        copied = try c.decodeIfPresent([Copy].self, forKey: .copied) ?? []
    }

    /// The copies the resharded group (`layout`'s shards of `key`) needs: up, from each old shard
    /// into the new shard's replica; down, from the removed shard into each replica of the others.
    /// (A `Dead` replica gets none: it is recovered from another replica, copies included.)
    public func copies(_ layout: [ShardInfo]) -> [Copy] {
        let group = layout.filter { $0.key == key }.sorted { $0.id < $1.id }
        guard let target = group.first(where: { $0.id == shard }) else { return [] }
        func receiving(_ shard: ShardInfo) -> [UInt64] { shard.peers.filter { shard.state(of: $0).isUpdatable } }
        switch direction {
        case .up:
            return group.filter { $0.id != shard }.flatMap { source in receiving(target).map { Copy(from: source.id, to: shard, peer: $0) } }
        case .down:
            return group.filter { $0.id != shard }.flatMap { receiver in receiving(receiver).map { Copy(from: shard, to: receiver.id, peer: $0) } }
        }
    }

    /// The group's shards before (`old`) and after (`new`), by id.
    func groups(_ group: [ShardInfo]) -> (old: [ShardInfo], new: [ShardInfo]) {
        let without = group.filter { $0.id != shard }
        return direction == .up ? (without, group) : (group, without)
    }

    /// Reads use the new count from `readCommitted` on (not when aborting).
    public var readsNew: Bool { stage == .readCommitted || stage == .writeCommitted || stage == .cleaned }
    /// Writes go under the old count until `writeCommitted` (only there when aborting), and under
    /// the new one from `migrating` on.
    var writesOld: Bool { stage == .preparing || stage == .migrating || stage == .readCommitted || stage == .aborting || stage == .aborted }
    var writesNew: Bool { stage == .migrating || stage == .readCommitted || stage == .writeCommitted || stage == .cleaned }

    /// The transfer that makes `copy`, from `source`'s replica: the points of the source shard that
    /// belong to the target under the new count.
    public func transfer(_ copy: Copy, from source: UInt64, layout: [ShardInfo], ring: PointRing) -> ShardTransfer? {
        let new = groups(layout.filter { $0.key == key }.sorted { $0.id < $1.id }).new
        guard let index = new.firstIndex(where: { $0.id == copy.to }) else { return nil }
        return ShardTransfer(shard: copy.from, from: source, to: copy.peer, sync: true, method: .reshardingStreamRecords,
                             toShard: copy.to, filter: Filter(must: [.owner(index: UInt32(index), count: UInt32(new.count), ring: ring)]))
    }
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

/// A read that one peer runs on some of its local shards, on behalf of the peer that received the
/// request (one call per peer, whatever the number of shards).
public indirect enum ShardRequest: Codable, Sendable {
    case retrieve(ids: [PointID], withPayload: WithPayload, withVector: WithVector)
    /// Points in id order from `offset`, at most `limit`.
    case scroll(offset: PointID?, limit: Int, filter: Filter?, withPayload: WithPayload, withVector: WithVector)
    case scrollOrdered(orderBy: OrderBy, limit: Int, filter: Filter?, withPayload: WithPayload, withVector: WithVector)
    case count(filter: Filter?)
    /// How many vectors the shards hold in vector indexes (``LocalShard/indexedVectorCount``):
    /// answers `count`.
    case indexedVectors
    /// A vector search whose query is a checked, normalised vector; `limit` is the whole window.
    case search(SearchRequest)
    /// Every value's count (the receiving peer applies the limit after summing).
    case facet(key: String, filter: Filter?)
    /// A point's stored vector `name` (dense, sparse or multi): answers `vector`.
    case vector(id: PointID, name: String)
    /// Counts for the `idf` modifier of sparse vector `name`: answers `sparseStatistics`.
    case sparseStatistics(name: String, indices: [UInt32], filter: Filter?)
    /// Whether the peer has applied the start of `transfer`, as its target: answers `count(1)`.
    case transferTarget(ShardTransfer)
    /// The shard's recovery point (``LocalShard/recoveryPoint``): answers `clocks`.
    case recoveryPoint
    /// The request, each shard answering only for the points matching its condition (during a
    /// resharding, the points it owns).
    case owned(ShardRequest, [UInt32: Condition])

    /// The request answering only for the points matching `condition`.
    func restricted(to condition: Condition?) -> ShardRequest {
        guard let condition else { return self }
        func and(_ filter: Filter?) -> Filter { Filter(must: (filter.map { [.filter($0)] } ?? []) + [condition]) }
        let holds = { (id: PointID) in Filter(must: [condition]).matches(id: id, payload: nil, hasVector: { _ in false }) }
        switch self {
        case .retrieve(let ids, let withPayload, let withVector): return .retrieve(ids: ids.filter(holds), withPayload: withPayload, withVector: withVector)
        case .scroll(let offset, let limit, let filter, let withPayload, let withVector):
            return .scroll(offset: offset, limit: limit, filter: and(filter), withPayload: withPayload, withVector: withVector)
        case .scrollOrdered(let orderBy, let limit, let filter, let withPayload, let withVector):
            return .scrollOrdered(orderBy: orderBy, limit: limit, filter: and(filter), withPayload: withPayload, withVector: withVector)
        case .count(let filter): return .count(filter: and(filter))
        case .search(var search):
            search.filter = and(search.filter)
            return .search(search)
        case .facet(let key, let filter): return .facet(key: key, filter: and(filter))
        case .vector(let id, _): return holds(id) ? self : .retrieve(ids: [], withPayload: .none, withVector: .none)
        case .sparseStatistics(let name, let indices, let filter): return .sparseStatistics(name: name, indices: indices, filter: and(filter))
        case .transferTarget, .recoveryPoint, .owned, .indexedVectors: return self
        }
    }
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
    case vector(QueryInput?)
    case sparseStatistics(SparseStatistics)
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
