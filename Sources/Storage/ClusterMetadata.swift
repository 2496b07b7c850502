public import QuiverJSON
public import QuiverModel

/// A change to cluster metadata, carried through consensus (DESIGN.md §4). Each operation is
/// complete and deterministic: every peer that applies it to the same ``ClusterMetadata`` reaches
/// the same state and the same outcome.
public enum MetadataOperation: Codable, Sendable, Equatable {
    /// The proposer resolves the request against its defaults and places the shards; every peer
    /// uses this config and placement.
    /// `routing` nil: a collection from before rings were recorded (modulo).
    case createCollection(name: String, config: CollectionConfig, shards: [ShardInfo], routing: ShardRouting? = nil)
    /// New shards of one shard key, placed by the proposer.
    case createShardKey(collection: String, shards: [ShardInfo])
    case dropShardKey(collection: String, key: ShardKey)
    /// Creates (or with `schema` nil drops) a payload index on every peer.
    case setPayloadIndex(collection: String, field: String, schema: JSONValue?)
    case updateCollection(name: String, update: UpdateCollection)
    /// Adds a named vector to a collection (both nil: removes it).
    case setNamedVector(collection: String, name: String, dense: VectorParams?, sparse: SparseVectorParams?)
    case deleteCollection(name: String)
    case changeAliases([AliasOperation])
    /// A `null` value deletes the key (as in Qdrant).
    case setMetadataKey(key: String, value: JSONValue)
    /// The node-wide quotas of `/quotas`, enforced by every peer against its own resources.
    case setQuota(QuotaConfig)
    /// `--reinit`: the cluster is re-founded with this peer's state.
    case replaceState(ClusterMetadata)
    /// A replica's new state; with `from`, only if the replica is in that state now.
    case setReplicaState(collection: String, shard: UInt32, peer: UInt64, state: ReplicaState, from: ReplicaState?)
    /// A new replica of a shard on `peer`, in `state`.
    case addReplica(collection: String, shard: UInt32, peer: UInt64, state: ReplicaState)
    /// `peer`'s replica leaves the shard; refused when it is the shard's last active one.
    case removeReplica(collection: String, shard: UInt32, peer: UInt64)
    /// A peer leaves the cluster for good: its replicas leave every shard (a shard whose last replica
    /// it held is left without replicas).
    case removePeerReplicas(peer: UInt64)
    /// A peer whose replicas are moved away (and onto which none are moved) before it leaves, or
    /// no longer.
    case drainPeer(peer: UInt64, draining: Bool)
    /// A collection recovered from a snapshot (created when missing): its configuration, shards
    /// and payload indexes are the snapshot's.
    case recoverCollection(name: String, config: CollectionConfig, shards: [ShardInfo], payloadIndexes: [String: JSONValue],
                           routing: ShardRouting? = nil)
    /// Starts `resharding` of `collection` (see ``Resharding``); scaling up adds `added`.
    case startResharding(collection: String, resharding: Resharding, added: ShardInfo?)
    /// Moves the resharding of `collection` on to `stage`, from the stage before it.
    case reshardingStage(collection: String, stage: Resharding.Stage)
    /// Ends the resharding of `collection` once `cleaned` (or `aborted`); a scale-down drops its shard.
    case finishResharding(collection: String)
    /// Aborts the resharding of `collection` while `migrating`: a scale-up drops its new shard, a
    /// scale-down goes to `aborting`.
    case abortResharding(collection: String)
    /// A shard transfer begins: the target replica (added when missing) takes the method's state.
    case startTransfer(collection: String, transfer: ShardTransfer)
    /// A `Recovery` target has the source's data and queued updates: it becomes `Partial`. With
    /// `started`, as for the end.
    case transferRecovered(collection: String, transfer: ShardTransfer.Key, started: UInt64? = nil)
    /// The target is complete: `Active`; a move's source leaves the shard. With `started`, only
    /// the transfer that started at that index ends.
    case finishTransfer(collection: String, transfer: ShardTransfer.Key, started: UInt64? = nil)
    /// The transfer stops: a replication's target turns `Dead`, a move's target leaves the shard.
    /// With `started`, as for the end.
    case abortTransfer(collection: String, transfer: ShardTransfer.Key, reason: String, started: UInt64? = nil)
    /// The transfer starts over with another method. With `started`, as for the end.
    case restartTransfer(collection: String, transfer: ShardTransfer.Key, method: ShardTransferMethod, started: UInt64? = nil)
}

/// The replicated catalogue: what every peer's ``TableOfContent`` converges to.
public struct ClusterMetadata: Codable, Sendable, Equatable {
    /// Index of the last log entry applied to this state.
    public var appliedIndex: UInt64 = 0
    public var collections: [String: CollectionConfig] = [:]
    /// alias → collection
    public var aliases: [String: String] = [:]
    /// `/cluster/metadata/keys`
    public var keys: [String: JSONValue] = [:]
    /// collection → its shards
    public var shards: [String: [ShardInfo]] = [:]
    /// collection → field → payload index schema
    public var payloadIndexes: [String: [String: JSONValue]] = [:]
    /// collection → its running shard transfers
    public var transfers: [String: [ShardTransfer]] = [:]
    /// Peers being drained: their replicas move to other peers, and none move onto them.
    public var drainingPeers: Set<UInt64> = []
    /// collection → its ring and resharding (absent: ``ShardRouting/legacy``)
    public var routing: [String: ShardRouting] = [:]
    /// `/quotas` (nil: never set; each peer enforces its `storage.quotas`)
    public var quota: QuotaConfig?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case appliedIndex = "applied_index", collections, aliases, keys, shards, payloadIndexes = "payload_indexes", transfers
        case drainingPeers = "draining_peers", routing, quota
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        appliedIndex = try c.decode(UInt64.self, forKey: .appliedIndex)
        collections = try c.decode([String: CollectionConfig].self, forKey: .collections)
        aliases = try c.decode([String: String].self, forKey: .aliases)
        keys = try c.decode([String: JSONValue].self, forKey: .keys)
        shards = try c.decodeIfPresent([String: [ShardInfo]].self, forKey: .shards) ?? [:]
        payloadIndexes = try c.decodeIfPresent([String: [String: JSONValue]].self, forKey: .payloadIndexes) ?? [:]
        transfers = try c.decodeIfPresent([String: [ShardTransfer]].self, forKey: .transfers) ?? [:]
        drainingPeers = try c.decodeIfPresent(Set<UInt64>.self, forKey: .drainingPeers) ?? []
        routing = try c.decodeIfPresent([String: ShardRouting].self, forKey: .routing) ?? [:]
        quota = try c.decodeIfPresent(QuotaConfig.self, forKey: .quota)
    }

    /// Applies `operation`; on failure the state is unchanged. Returns the operation's answer
    /// (`false` for deleting a collection that did not exist).
    public mutating func apply(_ operation: MetadataOperation) -> Result<Bool, StorageError> {
        switch operation {
        case .createCollection(let name, let config, let placed, let ring):
            do throws(StorageError) {
                try Self.checkNewCollection(name, collections: collections.keys.contains(name), alias: aliases[name] != nil)
            } catch {
                return .failure(error)
            }
            collections[name] = config
            shards[name] = placed
            routing[name] = ring
            payloadIndexes[name] = nil
            transfers[name] = nil
            return .success(true)
        case .createShardKey(let name, let placed):
            guard let config = collections[name] else { return .failure(.collectionNotFound(name)) }
            do throws(StorageError) {
                try Self.checkNewShardKey(placed.first?.key, config: config, layout: shards[name] ?? [])
            } catch {
                return .failure(error)
            }
            // Two keys proposed at once were numbered from the same view: the later one moves up.
            var added = placed
            let existing = shards[name] ?? []
            if let next = existing.map({ $0.id + 1 }).max(), added.contains(where: { $0.id < next }) {
                for i in added.indices { added[i].id = next + UInt32(i) }
            }
            shards[name] = existing + added
            return .success(true)
        case .dropShardKey(let name, let key):
            guard let config = collections[name] else { return .failure(.collectionNotFound(name)) }
            do throws(StorageError) {
                try Self.checkDropShardKey(key, collection: name, config: config, layout: shards[name] ?? [])
            } catch {
                return .failure(error)
            }
            let dropped = Set((shards[name] ?? []).filter { $0.key == key }.map(\.id))
            shards[name]?.removeAll { $0.key == key }
            transfers[name]?.removeAll { dropped.contains($0.shard) || dropped.contains($0.targetShard) }
            // The key's resharding goes with it.
            if routing[name]?.resharding?.key == key { routing[name]!.resharding = nil }
            return .success(true)
        case .setPayloadIndex(let name, let field, let schema):
            guard collections[name] != nil else { return .failure(.collectionNotFound(name)) }
            payloadIndexes[name, default: [:]][field] = schema
            return .success(true)
        case .setNamedVector(let collection, let name, let dense, let sparse):
            let resolved = Self.resolve(collection, aliases: aliases)
            guard var config = collections[resolved] else { return .failure(.collectionNotFound(collection)) }
            do {
                try config.setNamedVector(name, dense.map(NamedVectorConfig.dense) ?? sparse.map(NamedVectorConfig.sparse))
            } catch {
                return .failure(.badInput(error.message))
            }
            collections[resolved] = config
            return .success(true)
        case .updateCollection(let name, let update):
            guard let current = collections[Self.resolve(name, aliases: aliases)] else {
                return .failure(.collectionNotFound(name))
            }
            do {
                collections[Self.resolve(name, aliases: aliases)] = try current.applying(update)
            } catch {
                return .failure(.badInput(error.message))
            }
            return .success(true)
        case .recoverCollection(let name, let config, let placed, let indexes, let ring):
            guard aliases[name] == nil else { return .failure(.alreadyExists("Alias `\(name)` already exists!")) }
            collections[name] = config
            shards[name] = placed
            routing[name] = ring.map { ShardRouting(ring: $0.ring) }
            payloadIndexes[name] = indexes.isEmpty ? nil : indexes
            transfers[name] = nil
            return .success(true)
        case .deleteCollection(let name):
            guard collections.removeValue(forKey: name) != nil else { return .success(false) }
            aliases = aliases.filter { $0.value != name }
            shards[name] = nil
            routing[name] = nil
            payloadIndexes[name] = nil
            transfers[name] = nil
            return .success(true)
        case .changeAliases(let actions):
            do {
                aliases = try Self.applying(actions, to: aliases) { collections[$0] != nil }
            } catch {
                return .failure(error)
            }
            return .success(true)
        case .setMetadataKey(let key, let value):
            keys[key] = value.isNull ? nil : value
            return .success(true)
        case .setQuota(let config):
            quota = config
            return .success(true)
        case .setReplicaState(let name, let shardID, let peer, let state, let from):
            guard let layout = shards[name], collections[name] != nil else { return .failure(.collectionNotFound(name)) }
            guard let position = layout.firstIndex(where: { $0.id == shardID }), layout[position].peers.contains(peer) else {
                return .failure(.badInput("Replica \(peer) of shard \(shardID) of collection `\(name)` does not exist"))
            }
            let current = layout[position].state(of: peer)
            if let from, from != current {
                return .failure(.badInput("Replica \(peer) of shard \(shardID) has state \(current.rawValue), but expected \(from.rawValue)"))
            }
            let othersActive = layout[position].peers.contains { $0 != peer && layout[position].state(of: $0).isActive }
            // A snapshot recovery takes the last active replica out of service on purpose: it must
            // not answer, nor take writes the recovered data would drop, until it is whole again.
            if current.isActive && !state.isActive && !othersActive && state != .manualRecovery {
                return .failure(.badInput("Cannot deactivate the last active replica \(peer) of shard \(shardID)"))
            }
            // A source or target that turns Dead, or whose data is replaced, ends its transfers first.
            if state == .dead || state == .manualRecovery { abortTransfers(name, shard: shardID, involving: peer) }
            if shards[name]![position].peers.contains(peer) { shards[name]![position].setState(state, of: peer) }
            return .success(true)
        case .addReplica(let name, let shardID, let peer, let state):
            guard var layout = shards[name], collections[name] != nil else { return .failure(.collectionNotFound(name)) }
            guard let position = layout.firstIndex(where: { $0.id == shardID }) else {
                return .failure(.notFound("Shard \(shardID) of collection `\(name)` does not exist"))
            }
            guard !layout[position].peers.contains(peer) else {
                return .failure(.badRequest("Peer \(peer) already has a replica of shard \(shardID)"))
            }
            layout[position].peers.append(peer)
            layout[position].setState(state, of: peer)
            shards[name] = layout
            return .success(true)
        case .removeReplica(let name, let shardID, let peer):
            guard let layout = shards[name], collections[name] != nil else { return .failure(.collectionNotFound(name)) }
            guard let position = layout.firstIndex(where: { $0.id == shardID }), layout[position].peers.contains(peer) else {
                return .failure(.notFound("Replica \(peer) of shard \(shardID) of collection `\(name)` does not exist"))
            }
            let othersActive = layout[position].peers.contains { $0 != peer && layout[position].state(of: $0).isActive }
            guard othersActive else {
                return .failure(.badRequest("Shard \(shardID) must have at least one active replica after removing \(peer)"))
            }
            abortTransfers(name, shard: shardID, involving: peer)
            removeReplica(name, shard: shardID, peer: peer)
            return .success(true)
        case .drainPeer(let peer, let draining):
            if draining { drainingPeers.insert(peer) } else { drainingPeers.remove(peer) }
            return .success(true)
        case .removePeerReplicas(let peer):
            drainingPeers.remove(peer)
            for (name, list) in transfers {
                for transfer in list where transfer.from == peer || transfer.to == peer { abort(transfer.key, in: name) }
            }
            for (name, layout) in shards where layout.contains(where: { $0.peers.contains(peer) }) {
                shards[name] = layout.map { shard in
                    var shard = shard
                    shard.setState(.active, of: peer)
                    shard.peers.removeAll { $0 == peer }
                    return shard
                }
            }
            return .success(true)
        case .startTransfer(let name, var transfer):
            do throws(StorageError) {
                try checkTransfer(transfer, in: name)
            } catch {
                return .failure(error)
            }
            transfer.started = appliedIndex
            if !transfer.isCrossShard, routing[name]?.resharding?.stage == .migrating {
                // The replica starts over from its source: a copy it had received is gone.
                routing[name]!.resharding!.copied.removeAll { $0.to == transfer.shard && $0.peer == transfer.to }
            }
            if !transfer.isCrossShard {
                let position = shards[name]!.firstIndex { $0.id == transfer.shard }!
                if !shards[name]![position].peers.contains(transfer.to) { shards[name]![position].peers.append(transfer.to) }
                shards[name]![position].setState(transfer.targetState, of: transfer.to)
            }
            transfers[name, default: []].append(transfer)
            return .success(true)
        case .transferRecovered(let name, let key, let started):
            guard let transfer = self.transfer(key, started: started, in: name) else { return .failure(Self.noTransfer(key)) }
            guard let position = shards[name]?.firstIndex(where: { $0.id == key.shard }),
                  shards[name]![position].state(of: key.to) == .recovery else {
                return .failure(.badInput("Replica \(key.to) of shard \(key.shard) of collection `\(name)` is not in Recovery"))
            }
            shards[name]![position].setState(.partial, of: transfer.to)
            return .success(true)
        case .finishTransfer(let name, let key, let started):
            guard let transfer = self.transfer(key, started: started, in: name) else { return .failure(Self.noTransfer(key)) }
            if transfer.isCrossShard {
                removeTransfer(key, in: name)
                if transfer.method == .reshardingStreamRecords, routing[name]?.resharding?.stage == .migrating {
                    routing[name]!.resharding!.copied.append(Resharding.Copy(from: transfer.shard, to: transfer.targetShard, peer: transfer.to))
                }
                return .success(true)
            }
            guard let position = shards[name]?.firstIndex(where: { $0.id == key.shard }), shards[name]![position].peers.contains(key.to),
                  shards[name]![position].state(of: key.to) == .partial else {
                return .failure(.badRequest("Replica \(key.to) of shard \(key.shard) of collection `\(name)` is not in Partial state"))
            }
            removeTransfer(key, in: name)
            shards[name]![position].setState(.active, of: key.to)
            if !transfer.sync { removeReplica(name, shard: key.shard, peer: key.from) }
            return .success(true)
        case .abortTransfer(let name, let key, _, let started):
            guard transfer(key, started: started, in: name) != nil else { return .failure(Self.noTransfer(key)) }
            abort(key, in: name)
            return .success(true)
        case .restartTransfer(let name, let key, let method, let started):
            guard var transfer = self.transfer(key, started: started, in: name) else { return .failure(Self.noTransfer(key)) }
            guard transfer.method != method else {
                return .failure(.badRequest("Cannot restart transfer for shard \(key.shard) from \(key.from) to \(key.to), its configuration did not change"))
            }
            var next = self
            next.abort(key, in: name)
            transfer.method = method
            do throws(StorageError) {
                try next.checkTransfer(transfer, in: name)
            } catch {
                return .failure(error)
            }
            self = next
            return apply(.startTransfer(collection: name, transfer: transfer))
        case .startResharding(let name, let resharding, let added):
            do throws(StorageError) {
                try checkResharding(resharding, added: added, in: name)
            } catch {
                return .failure(error)
            }
            if let added { shards[name]!.append(added) }
            routing[name]!.resharding = resharding
            // A scale-down's receiving replicas say so (as in Qdrant; they serve as Active ones).
            if resharding.direction == .down { setReceivers(name, resharding, from: .active, to: .reshardingScaleDown) }
            return .success(true)
        case .reshardingStage(let name, let stage):
            guard var resharding = routing[name]?.resharding else { return .failure(.badRequest("resharding is not in progress for collection \(name)")) }
            let before: [Resharding.Stage: Resharding.Stage] = [.migrating: .preparing, .readCommitted: .migrating, .writeCommitted: .readCommitted,
                                                                .cleaned: .writeCommitted, .aborted: .aborting]
            guard let expected = before[stage], resharding.stage == expected else {
                return .failure(.badRequest("expected resharding stage \(before[stage]?.rawValue ?? "none") to move to \(stage.rawValue), but resharding is at stage \(resharding.stage.rawValue)"))
            }
            let missing = Set(resharding.copies(shards[name] ?? [])).subtracting(resharding.copied)
            if stage == .readCommitted, let copy = missing.sorted(by: { ($0.from, $0.to, $0.peer) < ($1.from, $1.to, $1.peer) }).first {
                return .failure(.badRequest("resharding of collection \(name) has not copied shard \(copy.from) into shard \(copy.to) on peer \(copy.peer) yet"))
            }
            // A stream into a replica of the group that started before the clean-up could bring it
            // points the clean-up has deleted at the source: the clean-up waits for it.
            let group = Set((shards[name] ?? []).filter { $0.key == resharding.key }.map(\.id))
            if stage == .cleaned || stage == .aborted, let busy = transfers[name]?.first(where: { !$0.isCrossShard && group.contains($0.shard) }) {
                return .failure(.badRequest("resharding of collection \(name) waits for the transfer of shard \(busy.shard) from \(busy.from) to \(busy.to) to end"))
            }
            if stage == .readCommitted, resharding.direction == .up,
               shards[name]?.first(where: { $0.id == resharding.shard }).map({ shard in !shard.peers.contains { shard.state(of: $0) == .resharding } }) ?? true {
                return .failure(.badRequest("the new shard \(resharding.shard) of collection \(name) has no replica to read from"))
            }
            resharding.stage = stage
            routing[name]!.resharding = resharding
            // Reads now reach a scaled-up shard.
            if stage == .readCommitted, resharding.direction == .up, let position = shards[name]?.firstIndex(where: { $0.id == resharding.shard }) {
                for peer in shards[name]![position].peers where shards[name]![position].state(of: peer) == .resharding {
                    shards[name]![position].setState(.active, of: peer)
                }
            }
            return .success(true)
        case .finishResharding(let name):
            guard let resharding = routing[name]?.resharding else { return .failure(.badRequest("resharding is not in progress for collection \(name)")) }
            guard resharding.stage == .cleaned || resharding.stage == .aborted else {
                return .failure(.badRequest("resharding of collection \(name) cannot finish at stage \(resharding.stage.rawValue)"))
            }
            if resharding.direction == .down { setReceivers(name, resharding, from: .reshardingScaleDown, to: .active) }
            let auto = collections[name]?.params.shardingMethod != .custom
            if resharding.direction == .down && resharding.stage == .cleaned {
                shards[name]?.removeAll { $0.id == resharding.shard }
                transfers[name]?.removeAll { $0.shard == resharding.shard || $0.targetShard == resharding.shard }
                if auto { collections[name]?.params.shardNumber -= 1 }
            } else if resharding.direction == .up && auto {
                collections[name]?.params.shardNumber += 1
            }
            routing[name]!.resharding = nil
            return .success(true)
        case .abortResharding(let name):
            guard let resharding = routing[name]?.resharding else { return .failure(.badRequest("resharding is not in progress for collection \(name)")) }
            guard resharding.stage == .preparing || resharding.stage == .migrating else {
                return .failure(.badRequest("can't abort resharding \(resharding.peer)/\(resharding.shard)/\(resharding.key.map { "\($0)" } ?? "nil"), because read hash ring has been committed already, resharding must be completed"))
            }
            for transfer in transfers[name] ?? [] where transfer.method == .reshardingStreamRecords { abort(transfer.key, in: name) }
            if resharding.direction == .up {
                shards[name]?.removeAll { $0.id == resharding.shard }
                transfers[name]?.removeAll { $0.shard == resharding.shard || $0.targetShard == resharding.shard }
                routing[name]!.resharding = nil
            } else {
                routing[name]!.resharding!.stage = .aborting
            }
            return .success(true)
        case .replaceState(let state):
            let index = appliedIndex
            self = state
            appliedIndex = index
            return .success(true)
        }
    }

    // MARK: Transfers

    /// The running transfer `key` of `name`; with `started`, only the one that started then.
    func transfer(_ key: ShardTransfer.Key, started: UInt64?, in name: String) -> ShardTransfer? {
        transfers[name]?.first { $0.key == key && (started == nil || $0.started == started) }
    }

    static func noTransfer(_ key: ShardTransfer.Key) -> StorageError {
        .badRequest("There is no transfer for \(key)")
    }

    mutating func removeTransfer(_ key: ShardTransfer.Key, in name: String) {
        transfers[name]?.removeAll { $0.key == key }
        if transfers[name]?.isEmpty == true { transfers[name] = nil }
    }

    /// Qdrant's checks of a new transfer: the shard exists, its source replica is active, and
    /// no other transfer of the shard involves either peer.
    func checkTransfer(_ transfer: ShardTransfer, in name: String) throws(StorageError) {
        guard collections[name] != nil, let shard = shards[name]?.first(where: { $0.id == transfer.shard }) else {
            throw .badRequest("Shard \(transfer.shard) does not exist")
        }
        guard transfer.from != transfer.to || transfer.isCrossShard else {
            throw .badRequest("Cannot transfer shard \(transfer.shard) from peer \(transfer.from) to itself")
        }
        guard shard.peers.contains(transfer.from), shard.state(of: transfer.from).isActive else {
            throw .badRequest("Shard \(transfer.shard) is not active on peer \(transfer.from)")
        }
        let shardsInvolved: Set = [transfer.shard, transfer.targetShard]
        if let other = transfers[name]?.first(where: { !shardsInvolved.isDisjoint(with: [$0.shard, $0.targetShard])
                                                        && !Set([$0.from, $0.to]).isDisjoint(with: [transfer.from, transfer.to]) }) {
            throw .badRequest("Shard \(other.shard) is already involved in transfer \(other.from) -> \(other.to)")
        }
        if let toShard = transfer.toShard {
            // Into another shard's replica, which keeps its points and its state.
            guard let target = shards[name]?.first(where: { $0.id == toShard }) else {
                throw .badRequest("Destination shard \(toShard) does not exist")
            }
            guard target.peers.contains(transfer.to), target.state(of: transfer.to).isUpdatable else {
                throw .badRequest("Shard transfer can't be started, because destination shard \(transfer.to)/\(toShard) takes no updates"
                                  + (target.peers.contains(transfer.to) ? " in state \(target.state(of: transfer.to).rawValue)" : ""))
            }
            guard transfer.method == .streamRecords || transfer.method == .reshardingStreamRecords else {
                throw .badRequest("Shard transfer into another shard must use stream_records or resharding_stream_records")
            }
            return
        }
        // A target holds no replica yet, or a Dead one to bring back: anything else is either
        // whole already or in the middle of another change.
        if shard.peers.contains(transfer.to), shard.state(of: transfer.to) != .dead {
            throw .badRequest("Shard \(transfer.shard) cannot be transferred to peer \(transfer.to): its replica there is \(shard.state(of: transfer.to).rawValue)")
        }
    }

    /// Ends the transfer `key`: a replication's target turns `Dead`, a move's target leaves.
    /// A transfer into another shard only leaves the catalogue (the points it sent stay).
    mutating func abort(_ key: ShardTransfer.Key, in name: String) {
        guard let transfer = transfers[name]?.first(where: { $0.key == key }) else { return }
        removeTransfer(key, in: name)
        guard !transfer.isCrossShard, let position = shards[name]?.firstIndex(where: { $0.id == key.shard }), shards[name]![position].peers.contains(key.to) else { return }
        if transfer.sync {
            shards[name]![position].setState(.dead, of: key.to)
        } else {
            removeReplica(name, shard: key.shard, peer: key.to)
        }
    }

    /// Aborts the transfers of shard `shard` of `name` whose source or target is `peer`.
    mutating func abortTransfers(_ name: String, shard: UInt32, involving peer: UInt64) {
        for transfer in transfers[name] ?? [] where (transfer.shard == shard && transfer.from == peer) || (transfer.targetShard == shard && transfer.to == peer) {
            abort(transfer.key, in: name)
        }
    }

    /// Takes `peer`'s replica out of shard `shard` of `name`.
    mutating func removeReplica(_ name: String, shard: UInt32, peer: UInt64) {
        guard let position = shards[name]?.firstIndex(where: { $0.id == shard }) else { return }
        shards[name]![position].setState(.active, of: peer)
        shards[name]![position].peers.removeAll { $0 == peer }
    }

    static func resolve(_ name: String, aliases: [String: String]) -> String {
        aliases[name] ?? name
    }

    /// The rules for a new collection's name, shared by single-node storage and consensus.
    static func checkNewCollection(_ name: String, collections exists: Bool, alias: Bool) throws(StorageError) {
        if exists { throw .collectionExists(name) }
        if alias {
            throw .badInput("Can't create collection with name \(name). Alias with the same name already exists")
        }
    }

    /// The rules for a new shard key, shared by single-node storage and consensus.
    static func checkNewShardKey(_ key: ShardKey?, config: CollectionConfig, layout: [ShardInfo]) throws(StorageError) {
        guard let key else { throw .badRequest("a shard key needs at least one shard") }
        guard config.params.shardingMethod == .custom else {
            throw .badRequest("Shard Key \(key) cannot be created with Auto sharding method")
        }
        if layout.contains(where: { $0.key == key }) { throw .badRequest("Shard key \(key) already exists") }
    }

    static func checkDropShardKey(_ key: ShardKey, collection: String, config: CollectionConfig, layout: [ShardInfo]) throws(StorageError) {
        guard config.params.shardingMethod == .custom else {
            throw .badRequest("shard key \(key) cannot be removed with Auto sharding method")
        }
        guard layout.contains(where: { $0.key == key }) else {
            throw .badRequest("Shard key \(key) does not exist for collection \(collection)")
        }
    }

    /// Applies all alias actions or none: each is checked, in order, against a working copy.
    static func applying(_ actions: [AliasOperation], to aliases: [String: String],
                         collectionExists: (String) -> Bool) throws(StorageError) -> [String: String] {
        var next = aliases
        for action in actions {
            switch action {
            case .create(let collectionName, let aliasName):
                guard collectionExists(collectionName) else { throw .collectionNotFound(collectionName) }
                if collectionExists(aliasName) { throw .collectionExists(aliasName) }
                next[aliasName] = collectionName
            case .delete(let aliasName):
                // Deleting a missing alias is not an error (as in Qdrant): a blue/green switch
                // "delete alias, create alias" must also work the first time.
                next[aliasName] = nil
            case .rename(let oldName, let newName):
                guard let target = next.removeValue(forKey: oldName) else {
                    throw .notFound("Alias \(oldName) does not exists!")
                }
                if collectionExists(newName) { throw .collectionExists(newName) }
                next[newName] = target
            }
        }
        return next
    }
}

extension ClusterMetadata {
    /// The state changes `peer` asks consensus for its own replicas: an `Initializing` replica
    /// (created on this peer once the catalogue reached it) becomes `Active`; on a Listener node an
    /// `Active` replica that is not its shard's only active one becomes `Listener`; on a normal node
    /// a `Listener` replica becomes `Active` again.
    public func ownReplicaChanges(peer: UInt64, listener: Bool) -> [MetadataOperation] {
        var changes: [MetadataOperation] = []
        for name in shards.keys.sorted() {
            for shard in shards[name]! where shard.peers.contains(peer) {
                let state = shard.state(of: peer)
                let othersActive = shard.peers.contains { $0 != peer && shard.state(of: $0).isActive }
                let wanted: ReplicaState? = switch state {
                case .initializing: .active
                case .active where listener && othersActive: .listener
                case .listener where !listener: .active
                default: nil
                }
                if let wanted {
                    changes.append(.setReplicaState(collection: name, shard: shard.id, peer: peer, state: wanted, from: state))
                }
            }
        }
        return changes
    }
}

extension [ShardInfo] {
    /// The same shards with every replica `Initializing`: new replicas in a cluster, until each
    /// peer has created its own.
    public var initializing: [ShardInfo] {
        map { shard in
            var shard = shard
            for peer in shard.peers { shard.setState(.initializing, of: peer) }
            return shard
        }
    }
}
