public import QuiverJSON

/// `ShardKey`: the name of a group of shards of a custom-sharded collection, a string or an
/// unsigned integer.
public enum ShardKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    case string(String)
    case number(UInt64)

    public init(json: JSONValue) throws(ValidationMessage) {
        switch json {
        case .string(let s): self = .string(s)
        case .int(let i) where i >= 0: self = .number(UInt64(i))
        case .uint(let u): self = .number(u)
        default: throw ValidationMessage("data did not match any variant of untagged enum ShardKey: expected a string or an unsigned integer, found \(json.kindDescription)")
        }
    }

    public var json: JSONValue {
        switch self {
        case .string(let s): .string(s)
        case .number(let n): .unsigned(n)
        }
    }

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .number(let n): String(n)
        }
    }

    /// Numbers before strings, each ascending (the order `GET …/shards` lists keys in).
    public static func < (a: ShardKey, b: ShardKey) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): x < y
        case (.number, .string): true
        case (.string, .number): false
        case (.string(let x), .string(let y)): x < y
        }
    }
}

extension ShardKey: Codable {
    public init(from decoder: any Decoder) throws {
        do {
            self = try ShardKey(json: try JSONValue(from: decoder))
        } catch let error as ValidationMessage {
            throw JSONDecodingError(path: decoder.codingPath.map(\.stringValue).joined(separator: "."), message: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
}

/// `ShardKeySelector` of a request: one key, several, or a target with a fallback used while the
/// target does not exist.
public enum ShardKeySelector: Codable, Sendable, Equatable {
    case keys([ShardKey])
    case fallback(target: ShardKey, fallback: ShardKey)
}

/// `ReplicaState`. Until replica sets arrive every replica is `Active`.
public enum ReplicaState: String, StringEnum {
    case active = "Active", dead = "Dead", partial = "Partial", initializing = "Initializing", listener = "Listener"
    case partialSnapshot = "PartialSnapshot", recovery = "Recovery", resharding = "Resharding"
    case reshardingScaleDown = "ReshardingScaleDown", activeRead = "ActiveRead", manualRecovery = "ManualRecovery"
}

/// `CreateShardingKey` (`PUT /collections/{c}/shards`).
public struct CreateShardingKey: Codable, Sendable, Equatable, Validatable {
    public var shardKey: ShardKey
    public var shardsNumber: UInt32?
    public var replicationFactor: UInt32?
    public var placement: [UInt64]?
    public var initialState: ReplicaState?

    public init(shardKey: ShardKey, shardsNumber: UInt32? = nil, replicationFactor: UInt32? = nil, placement: [UInt64]? = nil) {
        self.shardKey = shardKey
        self.shardsNumber = shardsNumber
        self.replicationFactor = replicationFactor
        self.placement = placement
    }

    enum CodingKeys: String, CodingKey {
        case shardKey = "shard_key", shardsNumber = "shards_number", replicationFactor = "replication_factor"
        case placement, initialState = "initial_state"
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "shards_number"), shardsNumber, min: 1)
        errors.range(fieldPath(path, "shards_number"), shardsNumber, max: CreateCollection.shardNumberMax)
        errors.range(fieldPath(path, "replication_factor"), replicationFactor, min: 1)
    }
}

/// `DropShardingKey` (`POST /collections/{c}/shards/delete`).
public struct DropShardingKey: Codable, Sendable, Equatable, Validatable {
    public var shardKey: ShardKey

    enum CodingKeys: String, CodingKey { case shardKey = "shard_key" }

    public func validate(into errors: inout ValidationErrors, path: String) {}
}

/// `POST /collections/{c}/cluster`: one change to where a collection's shards are (Qdrant's
/// `ClusterOperations`, an object with one of these keys).
public enum ClusterOperation: Decodable, Sendable, Equatable, Validatable {
    case moveShard(MoveShard)
    case replicateShard(MoveShard)
    case abortTransfer(TransferPeers)
    case restartTransfer(MoveShard)
    case dropReplica(Replica)
    case createShardingKey(CreateShardingKey)
    case dropShardingKey(DropShardingKey)
    case replicatePoints(ReplicatePoints)
    case startResharding(StartResharding)
    case abortResharding

    /// `start_resharding` body.
    public struct StartResharding: Codable, Sendable, Equatable {
        public var direction: ReshardingDirection
        /// Up: the peer of the new shard (else the one holding the fewest replicas of the
        /// collection); down: the peer whose replica of the removed shard the points are copied from.
        public var peerID: UInt64?
        public var shardKey: ShardKey?

        enum CodingKeys: String, CodingKey { case direction, peerID = "peer_id", shardKey = "shard_key" }
    }

    /// `replicate_points` body: copies the points of `from_shard_key`'s shard matching `filter`
    /// (all without one) into `to_shard_key`'s.
    public struct ReplicatePoints: Decodable, Sendable, Equatable {
        public var filter: Filter?
        public var fromShardKey: ShardKey
        public var toShardKey: ShardKey

        enum CodingKeys: String, CodingKey { case filter, fromShardKey = "from_shard_key", toShardKey = "to_shard_key" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            fromShardKey = try c.decode(ShardKey.self, forKey: .fromShardKey)
            toShardKey = try c.decode(ShardKey.self, forKey: .toShardKey)
            let path = (decoder.codingPath + [CodingKeys.filter]).map(\.stringValue).joined(separator: ".")
            filter = try PointsJSON.filter(try c.decodeIfPresent(JSONValue.self, forKey: .filter), path)
        }
    }

    /// `move_shard`, `replicate_shard` and `restart_transfer` bodies.
    public struct MoveShard: Codable, Sendable, Equatable {
        public var shardID: UInt32
        public var fromPeerID: UInt64
        public var toPeerID: UInt64
        public var method: ShardTransferMethod?

        public init(shardID: UInt32, fromPeerID: UInt64, toPeerID: UInt64, method: ShardTransferMethod? = nil) {
            self.shardID = shardID
            self.fromPeerID = fromPeerID
            self.toPeerID = toPeerID
            self.method = method
        }

        enum CodingKeys: String, CodingKey {
            case shardID = "shard_id", fromPeerID = "from_peer_id", toPeerID = "to_peer_id", method
        }
    }

    /// `abort_transfer` body.
    public struct TransferPeers: Codable, Sendable, Equatable {
        public var shardID: UInt32
        public var fromPeerID: UInt64
        public var toPeerID: UInt64

        enum CodingKeys: String, CodingKey { case shardID = "shard_id", fromPeerID = "from_peer_id", toPeerID = "to_peer_id" }
    }

    /// `drop_replica` body.
    public struct Replica: Codable, Sendable, Equatable {
        public var shardID: UInt32
        public var peerID: UInt64

        enum CodingKeys: String, CodingKey { case shardID = "shard_id", peerID = "peer_id" }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case moveShard = "move_shard", replicateShard = "replicate_shard", abortTransfer = "abort_transfer"
        case restartTransfer = "restart_transfer", dropReplica = "drop_replica", createShardingKey = "create_sharding_key"
        case dropShardingKey = "drop_sharding_key", replicatePoints = "replicate_points", startResharding = "start_resharding"
        case abortResharding = "abort_resharding"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "expected exactly one of \(CodingKeys.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", "))"))
        }
        switch key {
        case .moveShard: self = .moveShard(try c.decode(MoveShard.self, forKey: key))
        case .replicateShard: self = .replicateShard(try c.decode(MoveShard.self, forKey: key))
        case .abortTransfer: self = .abortTransfer(try c.decode(TransferPeers.self, forKey: key))
        case .restartTransfer:
            let body = try c.decode(MoveShard.self, forKey: key)
            guard body.method != nil else {
                throw DecodingError.keyNotFound(MoveShard.CodingKeys.method, .init(codingPath: [key], debugDescription: "missing field `method`"))
            }
            self = .restartTransfer(body)
        case .dropReplica: self = .dropReplica(try c.decode(Replica.self, forKey: key))
        case .createShardingKey: self = .createShardingKey(try c.decode(CreateShardingKey.self, forKey: key))
        case .dropShardingKey: self = .dropShardingKey(try c.decode(DropShardingKey.self, forKey: key))
        case .replicatePoints: self = .replicatePoints(try c.decode(ReplicatePoints.self, forKey: key))
        case .startResharding: self = .startResharding(try c.decode(StartResharding.self, forKey: key))
        case .abortResharding:
            _ = try c.decode(JSONObject.self, forKey: key)
            self = .abortResharding
        }
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        switch self {
        case .moveShard(let body), .replicateShard(let body), .restartTransfer(let body):
            let name = if case .moveShard = self { "move_shard" } else if case .replicateShard = self { "replicate_shard" } else { "restart_transfer" }
            if body.fromPeerID == body.toPeerID {
                errors.add(fieldPath(fieldPath(path, name), "to_peer_id"),
                           "cannot transfer shard to itself, \"to_peer_id\" must be different than \(body.fromPeerID) in \"from_peer_id\"")
            }
        case .createShardingKey(let body): body.validate(into: &errors, path: fieldPath(path, "create_sharding_key"))
        case .replicatePoints(let body) where body.fromShardKey == body.toShardKey:
            errors.add(fieldPath(fieldPath(path, "replicate_points"), "to_shard_key"), "must be different from from_shard_key")
        default: break
        }
    }
}

/// How a shard's data reaches a new replica (Qdrant's `ShardTransferMethod`).
public enum ShardTransferMethod: String, Codable, Sendable, CaseIterable {
    /// Batches of records from the source, new updates forwarded meanwhile; the target re-indexes.
    case streamRecords = "stream_records"
    /// A shard snapshot of the source, recovered on the target, then the updates queued meanwhile.
    case snapshot
    /// Only the operations the target missed, from the source's WAL.
    case walDelta = "wal_delta"
    case reshardingStreamRecords = "resharding_stream_records"
}

/// A shard transfer as `GET /collections/{c}/cluster` lists it (`ShardTransferInfo`).
public struct ShardTransferInfo: Encodable, Sendable, Equatable {
    public var shardID: UInt32
    /// The receiving shard, when not `shard_id`.
    public var toShardID: UInt32?
    public var from: UInt64
    public var to: UInt64
    /// True when the source keeps its replica (a replication), false for a move.
    public var sync: Bool
    public var method: ShardTransferMethod?
    /// Progress, on the source peer.
    public var comment: String?

    public init(shardID: UInt32, toShardID: UInt32? = nil, from: UInt64, to: UInt64, sync: Bool, method: ShardTransferMethod?, comment: String?) {
        self.shardID = shardID
        self.toShardID = toShardID
        self.from = from
        self.to = to
        self.sync = sync
        self.method = method
        self.comment = comment
    }

    enum CodingKeys: String, CodingKey { case shardID = "shard_id", toShardID = "to_shard_id", from, to, sync, method, comment }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(shardID, forKey: .shardID)
        try c.encodeIfPresent(toShardID, forKey: .toShardID)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(sync, forKey: .sync)
        try c.encodeIfPresent(method, forKey: .method)
        try c.encodeIfPresent(comment, forKey: .comment)
    }
}

/// `CollectionClusterInfo` (`GET /collections/{c}/cluster`).
public struct CollectionClusterInfo: Encodable, Sendable, Equatable {
    public struct Local: Encodable, Sendable, Equatable {
        public var shardID: UInt32
        public var shardKey: ShardKey?
        public var pointsCount: Int
        public var state: ReplicaState

        public init(shardID: UInt32, shardKey: ShardKey?, pointsCount: Int, state: ReplicaState) {
            self.shardID = shardID
            self.shardKey = shardKey
            self.pointsCount = pointsCount
            self.state = state
        }

        enum CodingKeys: String, CodingKey {
            case shardID = "shard_id", shardKey = "shard_key", pointsCount = "points_count", state
        }
    }

    public struct Remote: Encodable, Sendable, Equatable {
        public var shardID: UInt32
        public var shardKey: ShardKey?
        public var peerID: UInt64
        public var state: ReplicaState

        public init(shardID: UInt32, shardKey: ShardKey?, peerID: UInt64, state: ReplicaState) {
            self.shardID = shardID
            self.shardKey = shardKey
            self.peerID = peerID
            self.state = state
        }

        enum CodingKeys: String, CodingKey {
            case shardID = "shard_id", shardKey = "shard_key", peerID = "peer_id", state
        }
    }

    public var peerID: UInt64
    public var shardCount: Int
    public var localShards: [Local]
    public var remoteShards: [Remote]
    public var shardTransfers: [ShardTransferInfo]
    /// The resharding under way, if any (left out otherwise, as in Qdrant).
    public var reshardingOperations: [ReshardingInfo]?

    public init(peerID: UInt64, shardCount: Int, localShards: [Local], remoteShards: [Remote], shardTransfers: [ShardTransferInfo] = [],
                reshardingOperations: [ReshardingInfo]? = nil) {
        self.peerID = peerID
        self.shardCount = shardCount
        self.localShards = localShards
        self.remoteShards = remoteShards
        self.shardTransfers = shardTransfers
        self.reshardingOperations = reshardingOperations
    }

    enum CodingKeys: String, CodingKey {
        case peerID = "peer_id", shardCount = "shard_count", localShards = "local_shards"
        case remoteShards = "remote_shards", shardTransfers = "shard_transfers", reshardingOperations = "resharding_operations"
    }
}

extension PointsJSON {
    /// The optional `shard_key` of a request body: a key, a list of keys, or
    /// `{"target": key, "fallback": key}`.
    public static func shardKeySelector(_ body: JSONObject, _ path: String = "") throws(Failure) -> ShardKeySelector? {
        guard let value = body["shard_key"], !value.isNull else { return nil }
        let p = fieldPath(path, "shard_key")
        func key(_ value: JSONValue, _ path: String) throws(Failure) -> ShardKey {
            do {
                return try ShardKey(json: value)
            } catch {
                throw fail(path, error.message)
            }
        }
        switch value {
        case .array(let list):
            guard !list.isEmpty else { throw fail(p, "must name at least one shard key") }
            var keys: [ShardKey] = []
            for (i, element) in list.enumerated() { keys.append(try key(element, "\(p)[\(i)]")) }
            return .keys(keys)
        case .object(let object):
            try allowOnly(object, ["target", "fallback"], p)
            guard let target = object["target"] else { throw fail(p, "missing field `target`") }
            guard let fallback = object["fallback"] else { throw fail(p, "missing field `fallback`") }
            return .fallback(target: try key(target, fieldPath(p, "target")), fallback: try key(fallback, fieldPath(p, "fallback")))
        default:
            return .keys([try key(value, p)])
        }
    }
}

/// How a collection's points are spread over a group of shards (the collection's shards, or one
/// shard key's), the group sorted by shard id.
public enum PointRing: String, Codable, Sendable {
    /// `fmix64(key) % n`: collections created before resharding existed. Adding a shard moves
    /// most points, so these cannot be resharded.
    case modulo
    /// Jump consistent hashing (Lamping and Veach) of `fmix64(key)`: going from `n` to `n + 1`
    /// shards moves only the points that land on the new last shard, about `1/(n + 1)` of them,
    /// and going back moves only the last shard's points.
    case jump
}

/// Which shard a point belongs to: `key` is the number of a numeric id and `high ^ low` of a
/// UUID's two 64-bit halves, mixed by MurmurHash3's 64-bit finalizer, then placed by the ring.
/// Stable across restarts, peers and versions: changing it moves data.
public enum PointRouting {
    public static func shardIndex(of id: PointID, shardCount: Int, ring: PointRing = .modulo) -> Int {
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
        switch ring {
        case .modulo:
            return Int(h % UInt64(shardCount))
        case .jump:
            var bucket: Int64 = -1, next: Int64 = 0
            while next < Int64(shardCount) {
                bucket = next
                h = h &* 2_862_933_555_777_941_757 &+ 1
                next = Int64(Double(bucket + 1) * (Double(1 << 31) / Double((h >> 33) + 1)))
            }
            return Int(bucket)
        }
    }
}

/// `start_resharding`'s `direction`.
public enum ReshardingDirection: String, Codable, Sendable {
    case up, down
}

/// A resharding as `GET /collections/{c}/cluster` lists it (`ReshardingInfo`).
public struct ReshardingInfo: Encodable, Sendable, Equatable {
    public var direction: ReshardingDirection
    public var shardID: UInt32
    public var peerID: UInt64
    public var shardKey: ShardKey?

    public init(direction: ReshardingDirection, shardID: UInt32, peerID: UInt64, shardKey: ShardKey?) {
        self.direction = direction
        self.shardID = shardID
        self.peerID = peerID
        self.shardKey = shardKey
    }

    enum CodingKeys: String, CodingKey { case direction, shardID = "shard_id", peerID = "peer_id", shardKey = "shard_key" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(direction, forKey: .direction)
        try c.encode(shardID, forKey: .shardID)
        try c.encode(peerID, forKey: .peerID)
        try c.encode(shardKey?.json ?? .null, forKey: .shardKey)
    }
}
