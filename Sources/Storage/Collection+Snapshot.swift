import DiskIO
import QuiverJSON
import QuiverModel
import Shard

extension Collection {
    /// Writes this peer's part of the collection into `directory` (created): its configuration,
    /// payload index definitions, the layout of the shards it holds, and a consistent copy of each
    /// of those shards, taken one after another.
    func writeSnapshot(into directory: String) async throws(StorageError) {
        // Mid-resharding, points are on two shards and the shard count is neither.
        guard routing.resharding == nil else {
            throw .badRequest("Collection `\(name)` is being resharded; take the snapshot once the resharding has ended")
        }
        do {
            try disk.createDirectories(directory)
            try disk.writeFile(joinPath(directory, "config.json"), try JSONValueEncoder().encodeBytes(config))
            try disk.writeFile(joinPath(directory, Self.payloadIndexFile),
                               JSONWriter.write(.object(JSONObject(payloadSchema.keys.sorted().map { ($0, payloadSchema[$0]!.json) }))))
            let held = layout.filter { shards[$0.id] != nil }.map { ShardInfo(id: $0.id, key: $0.key, peers: [peerID]) }
            try disk.writeFile(joinPath(directory, Self.layoutFile), try JSONValueEncoder().encodeBytes(held))
            if routing.ring != ShardRouting.legacy.ring {
                try disk.writeFile(joinPath(directory, Self.routingFile), try JSONValueEncoder().encodeBytes(ShardRouting(ring: routing.ring)))
            }
        } catch {
            throw .writeFailed("cannot write the snapshot of collection `\(name)`", error)
        }
        for (id, shard) in localShards {
            do {
                try await shard.snapshot(into: joinPath(directory, String(id)))
            } catch {
                throw .writeFailed("cannot snapshot shard \(id) of collection `\(name)`", error)
            }
        }
    }
}

extension Collection {
    /// Writes a snapshot of local shard `id` into `directory` (created): the shard's files and the
    /// collection's configuration, which a recovery checks its vectors against.
    func writeShardSnapshot(_ id: UInt32, into directory: String) async throws(StorageError) {
        try checkLocalShard(id)
        do {
            try await shards[id]!.snapshot(into: directory)
            try disk.writeFile(joinPath(directory, "config.json"), try JSONValueEncoder().encodeBytes(config))
        } catch {
            throw .writeFailed("cannot snapshot shard \(id) of collection `\(name)`", error)
        }
    }

    /// Replaces local shard `id` with the shard files in `directory` (an extracted shard
    /// snapshot), swapping the directories in one atomic step; the old files end up in
    /// `directory`. Files that do not open as a shard of this collection leave the old shard in place.
    /// `current`, asked once the old shard is closed (a wait for its optimization), says whether
    /// the replacement is still wanted; when not, the old shard stays.
    func replaceShard(_ id: UInt32, with directory: String, while current: () -> Bool = { true }) async throws(StorageError) {
        try checkLocalShard(id)
        let configPath = joinPath(directory, "config.json")
        if disk.fileExists(configPath) {
            let theirs: CollectionConfig
            do {
                theirs = try JSONValueDecoder().decode(CollectionConfig.self, from: try disk.readFile(configPath))
            } catch {
                throw .badRequest("The snapshot's config.json is not valid: \(error)")
            }
            guard theirs.params.vectors == config.params.vectors else {
                throw .badRequest("The snapshot's vectors are not those of collection `\(name)`: it cannot be recovered into it")
            }
            try? disk.removeItem(configPath)
        }
        let target = joinPath(path, String(id))
        func open() throws(ShardError) -> LocalShard {
            try LocalShard(path: target, disk: disk, config: config, payloadSchema: payloadSchema, space: space)
        }
        let old = shards[id]!
        await old.close()
        guard current(), shards[id] === old else {
            if shards[id] === old { shards[id] = try? open() }
            throw .badRequest("Shard \(id) of collection `\(name)` changed while it was to be replaced")
        }
        do {
            try disk.exchange(directory, target)
        } catch {
            shards[id] = try? open()
            throw .serviceError("cannot put the recovered shard \(id) in place: \(error)")
        }
        try? disk.syncDirectory(path)
        do {
            shards[id] = try open()
        } catch {
            // The snapshot's files do not open: the old shard goes back.
            try? disk.exchange(directory, target)
            try? disk.syncDirectory(path)
            shards[id] = try? open()
            throw .badRequest("The snapshot cannot be opened as shard \(id): \(error)")
        }
    }
}

extension Collection {
    /// Refuses a shard this peer does not hold.
    public func checkLocalShard(_ id: UInt32) throws(StorageError) {
        guard shards[id] != nil else { throw .shardNotHere(id, collection: name, peer: peerID) }
    }
}

extension Collection {
    /// Closes every local shard (see `LocalShard.close(waiting:)`) before the collection's
    /// directory is moved away: a recovery (`waiting` for running optimizations) or a deletion.
    func close(waiting: Bool = true) async {
        for (_, shard) in localShards { await shard.close(waiting: waiting) }
    }
}
