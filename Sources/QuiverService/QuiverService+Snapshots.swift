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
        try await storage { () async throws(StorageError) in try await toc.createSnapshot(collection, shard: shard, now: now) }
    }

    public func listSnapshots(_ collection: String, shard: UInt32? = nil) async throws(ServiceError) -> [SnapshotDescription] {
        try await storage { () async throws(StorageError) in try await toc.listSnapshots(collection, shard: shard) }
    }

    /// The archive of snapshot `name` of `collection`, for download.
    public func snapshotFile(_ collection: String, _ name: String, shard: UInt32? = nil) async throws(ServiceError) -> String {
        try await storage { () async throws(StorageError) in try await toc.snapshotPath(collection, name, shard: shard) }
    }

    public func deleteSnapshot(_ collection: String, _ name: String, shard: UInt32? = nil) async throws(ServiceError) -> Bool {
        try await storage { () async throws(StorageError) in try await toc.deleteSnapshot(collection, name, shard: shard) }
        return true
    }

    /// `PUT /collections/{c}/snapshots/recover` (and with `shard`, `…/shards/{id}/snapshots/recover`):
    /// from a `file://` location, or downloaded from an `http(s)://` one first.
    public func recoverSnapshot(_ collection: String, shard: UInt32? = nil, _ request: SnapshotRecover) async throws(ServiceError) -> Bool {
        try Self.validate(request)
        guard request.location.hasPrefix("http://") || request.location.hasPrefix("https://") else {
            return try await recover(collection, shard: shard, from: try snapshotLocation(request.location), checksum: request.checksum)
        }
        guard let downloader else { throw .storage(.forbidden("Snapshot recovery from remote URLs is disabled in the configuration")) }
        let path = await toc.temporaryPath("download")
        defer { try? toc.disk.removeItem(path) }
        try await storage { () async throws(StorageError) in try await downloader(request.location, request.apiKey, path) }
        return try await recover(collection, shard: shard, from: path, checksum: request.checksum)
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

    /// Recovers `collection` (creating it when missing) from the archive at `path`, then records the
    /// snapshot's configuration, shards and payload indexes in the catalogue; with `shard`, replaces
    /// that local shard of the collection from a shard snapshot.
    /// `replacingConfiguration` replaces an existing collection's configuration too (`--force-snapshot`).
    public func recover(_ collection: String, shard: UInt32? = nil, from path: String, checksum: String?,
                        replacingConfiguration: Bool = false) async throws(ServiceError) -> Bool {
        if cluster != nil {
            throw .storage(.badRequest("Recovering a snapshot on a cluster peer is not supported by this version"))
        }
        if let shard {
            try await storage { () async throws(StorageError) in try await toc.recoverShard(collection, shard: shard, from: path, checksum: checksum) }
            return true
        }
        if !(await toc.collectionExists(collection)) { try Self.validateNewCollectionName(collection) }
        let recovered = try await storage { () async throws(StorageError) in
            try await toc.recoverCollection(collection, from: path, checksum: checksum, replacingConfiguration: replacingConfiguration)
        }
        let result: Result<Bool, ServiceError>
        do {
            result = .success(try await propose(.recoverCollection(name: collection, config: recovered.config, shards: recovered.layout,
                                                                   payloadIndexes: recovered.payloadIndexes), timeout: nil))
        } catch {
            result = .failure(error)
        }
        await toc.finishRecovery(collection)
        return try result.get()
    }
}

/// Full storage snapshots.
extension QuiverService {
    public func createFullSnapshot(now: Int64) async throws(ServiceError) -> SnapshotDescription {
        try await storage { () async throws(StorageError) in try await toc.createFullSnapshot(now: now) }
    }

    public func listFullSnapshots() async throws(ServiceError) -> [SnapshotDescription] {
        try await storage { () async throws(StorageError) in try await toc.listFullSnapshots() }
    }

    public func fullSnapshotFile(_ name: String) async throws(ServiceError) -> String {
        try await storage { () async throws(StorageError) in try await toc.fullSnapshotPath(name) }
    }

    public func deleteFullSnapshot(_ name: String) async throws(ServiceError) -> Bool {
        try await storage { () async throws(StorageError) in try await toc.deleteFullSnapshot(name) }
        return true
    }

    /// The collection archives and aliases of the full snapshot at `path`, extracted.
    public func unpackFullSnapshot(_ path: String) async throws(ServiceError) -> (collections: [(path: String, collection: String)], aliases: [String: String]) {
        try await storage { () async throws(StorageError) in try await toc.unpackFullSnapshot(path) }
    }

    /// Points each alias at its collection, as a full snapshot recorded them.
    public func restoreAliases(_ aliases: [String: String]) async throws(ServiceError) -> Bool {
        let actions: [AliasOperation] = aliases.sorted { $0.key < $1.key }.flatMap { alias, collection in
            [AliasOperation.delete(aliasName: alias), .create(collectionName: collection, aliasName: alias)]
        }
        return try await propose(.changeAliases(actions), timeout: nil)
    }
}
