import Foundation
import DiskIO
public import QuiverModel
import Storage

/// Fetches `url` into the file `destination`, sending `apiKey` as the `api-key` header when given.
public typealias SnapshotDownloader = @Sendable (_ url: String, _ apiKey: String?, _ destination: String) async throws(StorageError) -> Void

/// Collection snapshots: create, list, download, delete, and recover from a file, a URL or an upload.
extension QuiverService {
    /// `body`'s storage error as the service's.
    func storage<T>(_ body: () async throws(StorageError) -> T) async throws(ServiceError) -> T {
        do {
            return try await body()
        } catch {
            throw .storage(error)
        }
    }

    /// With `shard`, the snapshot (and in the functions below, the snapshots) of that local shard.
    public func createSnapshot(_ collection: String, shard: UInt32? = nil, now: Int64) async throws(ServiceError) -> SnapshotDescription {
        try Access.require(collection, write: true, extras: true)
        return try await storage { () async throws(StorageError) in try await toc.createSnapshot(collection, shard: shard, now: now) }
    }

    public func listSnapshots(_ collection: String, shard: UInt32? = nil) async throws(ServiceError) -> [SnapshotDescription] {
        try Access.require(collection, extras: true)
        return try await storage { () async throws(StorageError) in try await toc.listSnapshots(collection, shard: shard) }
    }

    /// The archive of snapshot `name` of `collection`, for download.
    public func snapshotFile(_ collection: String, _ name: String, shard: UInt32? = nil) async throws(ServiceError) -> String {
        try Access.require(collection, extras: true)
        return try await storage { () async throws(StorageError) in try await toc.snapshotPath(collection, name, shard: shard) }
    }

    public func deleteSnapshot(_ collection: String, _ name: String, shard: UInt32? = nil) async throws(ServiceError) -> Bool {
        try Access.require(collection, write: true, extras: true)
        try await storage { () async throws(StorageError) in try await toc.deleteSnapshot(collection, name, shard: shard) }
        return true
    }

    /// `PUT /collections/{c}/snapshots/recover` (and with `shard`, `…/shards/{id}/snapshots/recover`):
    /// from a `file://` location, or downloaded from an `http(s)://` one first.
    public func recoverSnapshot(_ collection: String, shard: UInt32? = nil, _ request: SnapshotRecover) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validate(request)
        let priority = request.priority ?? .replica
        guard request.location.hasPrefix("http://") || request.location.hasPrefix("https://") else {
            let path: String
            if let shard {
                path = try await shardSnapshotLocation(request.location, collection: collection, shard: shard)
            } else {
                path = try snapshotLocation(request.location)
            }
            return try await recover(collection, shard: shard, from: path, checksum: request.checksum, priority: priority)
        }
        guard let downloader else { throw .storage(.forbidden("Snapshot recovery from remote URLs is disabled in the configuration")) }
        try requireWritableDisk()
        let path = await toc.temporaryPath("download")
        defer { try? toc.disk.removeItem(path) }
        try await storage { () async throws(StorageError) in try await downloader(request.location, request.apiKey, path) }
        return try await recover(collection, shard: shard, from: path, checksum: request.checksum, priority: priority)
    }

    /// A shard snapshot's location other than an `http(s)://` URL, as Qdrant takes it: the name of
    /// one of the shard's own snapshots on this peer; URLs of other schemes are refused.
    func shardSnapshotLocation(_ location: String, collection: String, shard: UInt32) async throws(ServiceError) -> String {
        if let colon = location.firstIndex(of: ":"), location[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }),
           location.first?.isLetter == true, location[colon...].hasPrefix("://") {
            let scheme = location[..<colon]
            throw .storage(.badRequest("Invalid snapshot URL \(location): URLs with \(scheme) scheme are not supported"))
        }
        return try await snapshotFile(collection, location, shard: shard)
    }

    /// The file a `file://` location names, as Qdrant allows it: a local absolute path to an
    /// existing file inside the snapshots directory (after resolving links and `..`).
    func snapshotLocation(_ location: String) throws(ServiceError) -> String {
        guard location.hasPrefix("file://") else {
            let scheme = location.split(separator: ":", maxSplits: 1).first.map(String.init) ?? location
            throw .storage(.badRequest("URL \(location) with scheme \(scheme) is not supported"))
        }
        var path = String(location.dropFirst("file://".count))
        if path.hasPrefix("localhost/") { path.removeFirst("localhost".count) }
        guard path.hasPrefix("/") else {
            throw .storage(.badRequest("Invalid snapshot URI, file path must be absolute or on localhost"))
        }
        path = path.removingPercentEncoding ?? path
        let disk = toc.disk
        guard disk.fileExists(path) else { throw .storage(.badRequest("Snapshot file \"\(path)\" does not exist")) }
        guard !disk.isDirectory(path) else { throw .storage(.badRequest("Snapshot location \"\(path)\" is a directory, not a snapshot file")) }
        let resolved: String, root: String
        do {
            resolved = try disk.canonicalPath(path)
        } catch {
            throw .storage(.badRequest("Failed to resolve snapshot path \"\(path)\": \(error)"))
        }
        do {
            try disk.createDirectories(toc.snapshotsPath)
            root = try disk.canonicalPath(toc.snapshotsPath)
        } catch {
            throw .storage(.serviceError("Failed to resolve snapshots directory \"\(toc.snapshotsPath)\": \(error)"))
        }
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw .storage(.forbidden("Snapshot file path must be inside the snapshots directory \"\(root)\""))
        }
        return resolved
    }

    /// Recovers `collection` from the archive at `path`; with `shard`, replaces that local shard of
    /// the collection from a shard snapshot. On a single node a collection snapshot replaces the
    /// whole collection (created when missing) in one step, then the catalogue takes its
    /// configuration, shards and payload indexes; `replacingConfiguration` replaces an existing
    /// collection's configuration too (`--force-snapshot`). On a cluster peer it replaces this
    /// peer's replicas of the shards it holds (see ``recoverReplicas(_:from:checksum:priority:)``).
    public func recover(_ collection: String, shard: UInt32? = nil, from path: String, checksum: String?,
                        priority: SnapshotPriority = .replica, replacingConfiguration: Bool = false) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try requireWritableDisk()
        await toc.noteRecovery(collection, running: true)
        let result: Result<Bool, ServiceError>
        do {
            result = .success(try await recoverTracked(collection, shard: shard, from: path, checksum: checksum, priority: priority,
                                                       replacingConfiguration: replacingConfiguration))
        } catch {
            result = .failure(error)
        }
        await toc.noteRecovery(collection, running: false)
        return try result.get()
    }

    private func recoverTracked(_ collection: String, shard: UInt32?, from path: String, checksum: String?,
                                priority: SnapshotPriority, replacingConfiguration: Bool) async throws(ServiceError) -> Bool {
        if let shard {
            try await storage { () async throws(StorageError) in try await toc.collection(collection).checkLocalShard(shard) }
            let files = try await storage { () async throws(StorageError) in try await toc.extractSnapshot(path, checksum: checksum) }
            defer { try? toc.disk.removeItem(files) }
            try await recoverReplica(collection, shard: shard, priority: priority) { () async throws(StorageError) in
                try await toc.recoverShard(collection, shard: shard, fromFiles: files)
            }
            return true
        }
        if cluster != nil { return try await recoverReplicas(collection, from: path, checksum: checksum, priority: priority) }
        if !(await toc.collectionExists(collection)) { try Self.validateNewCollectionName(collection) }
        let recovered = try await storage { () async throws(StorageError) in
            try await toc.recoverCollection(collection, from: path, checksum: checksum, replacingConfiguration: replacingConfiguration)
        }
        let result: Result<Bool, ServiceError>
        do {
            result = .success(try await propose(.recoverCollection(name: collection, config: recovered.config, shards: recovered.layout,
                                                                   payloadIndexes: recovered.payloadIndexes, routing: recovered.routing), timeout: nil))
        } catch {
            result = .failure(error)
        }
        await toc.finishRecovery(collection)
        return try result.get()
    }
}

/// Recovery in a cluster, shard by shard, through the replica states (DESIGN.md §6).
extension QuiverService {
    /// A collection snapshot recovered on a cluster peer: the collection is created from the
    /// snapshot's configuration and payload indexes when the cluster has none of that name; each
    /// shard of the snapshot replaces this peer's replica of it, and a shard that has no replica
    /// left anywhere (its peers were removed) gets one here. Shards of the snapshot this peer
    /// holds no replica of are skipped. See ``recoverReplica(_:shard:priority:replace:)`` for the
    /// states the replicas go through.
    func recoverReplicas(_ name: String, from path: String, checksum: String?, priority: SnapshotPriority) async throws(ServiceError) -> Bool {
        let snapshot = try await storage { () async throws(StorageError) in try await toc.extractCollectionSnapshot(path, checksum: checksum) }
        let result: Result<Bool, ServiceError>
        do {
            try await recoverReplicas(name, from: snapshot, priority: priority)
            result = .success(true)
        } catch {
            result = .failure(error)
        }
        await toc.discard(snapshot)
        return try result.get()
    }

    private func recoverReplicas(_ name: String, from snapshot: TableOfContent.ExtractedSnapshot, priority: SnapshotPriority) async throws(ServiceError) {
        var priority = priority
        if !(await toc.collectionExists(name)) {
            // The other replicas of a collection created here are empty: the snapshot is the truth.
            priority = .snapshot
            try Self.validateNewCollectionName(name)
            let peers = await placementPeers()
            let config = snapshot.contents.config
            let started = ContinuousClock.now
            _ = try await propose(.createCollection(name: name, config: config, shards: ShardPlacement.initial(config, peers: peers).initializing,
                                                    routing: snapshot.contents.routing), timeout: nil)
            await awaitActivation(of: name, shards: { _ in true }, since: started, timeout: nil)
            for (field, schema) in snapshot.contents.payloadIndexes.sorted(by: { $0.key < $1.key }) {
                _ = try await propose(.setPayloadIndex(collection: name, field: field, schema: schema), timeout: nil)
            }
        }
        try await storage { () async throws(StorageError) in try await toc.checkCompatible(name, with: snapshot) }
        let me = consensus.peerId
        let inSnapshot = Set(snapshot.contents.layout.map(\.id))
        for shard in consensus.metadata.shards[name] ?? [] where shard.peers.isEmpty && inSnapshot.contains(shard.id) {
            _ = try await propose(.addReplica(collection: name, shard: shard.id, peer: me, state: .manualRecovery), timeout: nil)
        }
        for shard in consensus.metadata.shards[name] ?? [] where shard.peers.contains(me) && inSnapshot.contains(shard.id) {
            try await recoverReplica(name, shard: shard.id, priority: priority) { () async throws(StorageError) in
                try await toc.recoverShard(name, shard: shard.id, fromFiles: joinPath(snapshot.directory, String(shard.id)))
            }
        }
    }

    /// Replaces this peer's replica of shard `shard` of `name` (by running `replace`), on a single
    /// node as in a cluster. The replica is `ManualRecovery` meanwhile: it neither answers nor takes
    /// writes that the recovered data would drop; after a crash it stays so until recovered again.
    /// Once its data is in place it becomes `Active` when no other replica is, and otherwise as
    /// `priority` says: `no_sync` makes it `Active` as it is; `snapshot` makes it `Active` and the
    /// source of truth, the other replicas beyond the replication factor leaving and the rest
    /// turning `Dead` (to be brought up to date from it); `replica` leaves the others as the source
    /// of truth and this replica `Dead`. When the replacement fails the old data stays in place;
    /// the replica gets its old active state back, or turns `Dead` when other replicas took
    /// writes or it was not active. A replica receiving a transfer is not recovered.
    func recoverReplica(_ name: String, shard id: UInt32, priority: SnapshotPriority,
                        replace: () async throws(StorageError) -> Void) async throws(ServiceError) {
        let collection = try await storage { () async throws(StorageError) in try await toc.collection(name) }
        let me = collection.peerID
        func info() async -> ShardInfo? { await collection.layout.first { $0.id == id } }
        func set(_ peer: UInt64, _ state: ReplicaState) async throws(ServiceError) {
            guard let shard = await info(), shard.peers.contains(peer), shard.state(of: peer) != state else { return }
            _ = try await propose(.setReplicaState(collection: collection.name, shard: id, peer: peer, state: state, from: nil), timeout: nil)
        }
        guard let before = await info()?.state(of: me) else {
            throw .storage(.notFound("Shard \(id) of collection `\(collection.name)` is not on peer \(me)"))
        }
        if let transfer = await collection.transfers.first(where: { $0.shard == id && $0.to == me }) {
            throw .storage(.badRequest("Shard \(id) of collection `\(collection.name)` is receiving a transfer from peer \(transfer.from); abort it first or try again once it is over"))
        }
        try await storage { () async throws(StorageError) in try await toc.reserveShard(collection.name, shard: id) }
        let replaced: Result<Void, StorageError>
        do {
            try await set(me, .manualRecovery)
            do {
                try await replace()
                replaced = .success(())
            } catch {
                replaced = .failure(error)
            }
        } catch {
            await toc.releaseShard(collection.name, shard: id)
            throw error
        }
        await toc.releaseShard(collection.name, shard: id)
        if case .failure(let error) = replaced {
            // The old data is in place, but other active replicas may have taken writes meanwhile:
            // then it is out of date and waits to be brought up to date from them.
            let othersActive = await info().map { shard in shard.peers.contains { $0 != me && shard.state(of: $0).isActive } } ?? false
            try? await set(me, othersActive || !before.isActive ? .dead : before)
            throw .storage(error)
        }
        guard let shard = await info() else { return }
        let others = shard.peers.filter { $0 != me && shard.state(of: $0).isActive }
        if others.isEmpty || priority == .noSync {
            try await set(me, .active)
            return
        }
        switch priority {
        case .snapshot:
            try await set(me, .active)
            var surplus = max(0, others.count - (Int(await collection.config.params.replicationFactor) - 1))
            for peer in others {
                if surplus > 0 {
                    surplus -= 1
                    _ = try await propose(.removeReplica(collection: collection.name, shard: id, peer: peer), timeout: nil)
                } else {
                    try await set(peer, .dead)
                }
            }
        case .replica, .noSync:
            try await set(me, .dead)
        }
    }
}

/// Full storage snapshots.
extension QuiverService {
    public func createFullSnapshot(now: Int64) async throws(ServiceError) -> SnapshotDescription {
        try Access.requireGlobal(manage: true)
        return try await storage { () async throws(StorageError) in try await toc.createFullSnapshot(now: now) }
    }

    public func listFullSnapshots() async throws(ServiceError) -> [SnapshotDescription] {
        try Access.requireGlobal(manage: false)
        return try await storage { () async throws(StorageError) in try await toc.listFullSnapshots() }
    }

    public func fullSnapshotFile(_ name: String) async throws(ServiceError) -> String {
        try Access.requireGlobal(manage: false)
        return try await storage { () async throws(StorageError) in try await toc.fullSnapshotPath(name) }
    }

    public func deleteFullSnapshot(_ name: String) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try await storage { () async throws(StorageError) in try await toc.deleteFullSnapshot(name) }
        return true
    }

    /// The collection archives and aliases of the full snapshot at `path`, extracted.
    public func unpackFullSnapshot(_ path: String) async throws(ServiceError) -> (collections: [(path: String, collection: String)], aliases: [String: String]) {
        try Access.requireGlobal(manage: true)
        return try await storage { () async throws(StorageError) in try await toc.unpackFullSnapshot(path) }
    }

    /// Points each alias at its collection, as a full snapshot recorded them.
    public func restoreAliases(_ aliases: [String: String]) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        let actions: [AliasOperation] = aliases.sorted { $0.key < $1.key }.flatMap { alias, collection in
            [AliasOperation.delete(aliasName: alias), .create(collectionName: collection, aliasName: alias)]
        }
        return try await propose(.changeAliases(actions), timeout: nil)
    }
}
