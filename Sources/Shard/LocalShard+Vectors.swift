import DiskIO
public import QuiverModel

/// The vectors a shard's points may have, from the collection's configuration: dense by name with
/// their dimension and datatype, multivectors and sparse vectors by name.
public struct VectorNames: Sendable, Equatable {
    public var dimensions: [String: Int] = [:]
    public var datatypes: [String: Datatype] = [:]
    public var multi: Set<String> = []
    public var sparse: Set<String> = []

    public init(_ config: CollectionConfig) {
        for (name, params) in config.params.vectors.all {
            if params.multivectorConfig == nil { dimensions[name] = Int(params.size) } else { multi.insert(name) }
            datatypes[name] = params.datatype
        }
        sparse = Set((config.params.sparseVectors ?? [:]).keys)
    }

    /// Whether a point's vector `name` of each kind is one the shard keeps.
    func keeps(_ point: PointStruct) -> Bool {
        point.vectors.keys.allSatisfy { dimensions[$0] != nil } && point.sparse.keys.allSatisfy(sparse.contains)
            && point.multi.keys.allSatisfy(multi.contains)
    }

    /// The point without vectors the shard does not keep.
    func restricted(_ point: PointStruct) -> PointStruct {
        guard !keeps(point) else { return point }
        var point = point
        point.vectors = point.vectors.filter { dimensions[$0.key] != nil }
        point.sparse = point.sparse.filter { sparse.contains($0.key) }
        point.multi = point.multi.filter { multi.contains($0.key) }
        return point
    }
}

extension LocalShard {
    /// Named vectors added to or removed from the collection (`PUT`/`DELETE …/vectors/{name}`):
    /// every segment gets an empty column for an added dense vector and loses the data of a
    /// removed one (an immutable segment's files of it are deleted and its manifest rewritten), so
    /// a vector created again under the same name starts empty.
    public func setVectors(_ config: CollectionConfig) throws(ShardError) {
        let names = VectorNames(config)
        let previous = segments.names
        guard names != previous else { return }
        segments.names = names
        do {
            for i in segments.entries.indices { try segments.entries[i].setVectors(names, disk: disk) }
        } catch {
            throw .segment(error)
        }
        storage = Self.storage(for: config)
        // Once a vector is removed, no operation from before may be replayed: a vector created
        // again under the name would get the old data back.
        let removed = previous.dimensions.keys.contains { names.dimensions[$0] == nil } || !previous.multi.isSubset(of: names.multi)
            || !previous.sparse.isSubset(of: names.sparse)
        if removed { try persist() }
    }
}

extension SegmentEntry {
    mutating func setVectors(_ names: VectorNames, disk: any Disk) throws(DiskError) {
        if appendable != nil { appendable!.setVectors(names) } else { try immutable!.setVectors(names, disk: disk) }
    }
}

extension AppendableSegment {
    /// Columns added for new dense vectors, and every vector of a removed name dropped. The next
    /// flush rewrites the vector files (their numbering follows the names) and the sparse and
    /// multivector logs (so no record of a removed name survives).
    mutating func setVectors(_ names: VectorNames) {
        var changed = false
        for name in dimensions.keys where names.dimensions[name] == nil {
            dimensions[name] = nil
            vectors[name] = nil
            hasVector[name] = nil
            changed = true
        }
        for (name, dimension) in names.dimensions where dimensions[name] == nil {
            dimensions[name] = dimension
            var column = VectorColumn(names.datatypes[name])
            column.appendZeros(ids.count * dimension)
            vectors[name] = column
            hasVector[name] = [Bool](repeating: false, count: ids.count)
            changed = true
        }
        for name in sparse.keys where !names.sparse.contains(name) {
            sparse[name] = nil
            rewriteLogs = true
        }
        for name in multi.keys where !names.multi.contains(name) {
            multi[name] = nil
            rewriteLogs = true
        }
        if changed || rewriteLogs { markAllChanged() }
    }
}

extension ImmutableSegment {
    /// Drops the vectors whose names are gone: their columns, graphs and files, and their entries
    /// in the manifest. (A dense vector added later has no file here: its points have none.)
    mutating func setVectors(_ names: VectorNames, disk: any Disk) throws(DiskError) {
        guard dimensions.keys.contains(where: { names.dimensions[$0] == nil }) || multiColumns.keys.contains(where: { !names.multi.contains($0) })
            || sparseColumns.keys.contains(where: { !names.sparse.contains($0) }) else { return }
        let files = SegmentFiles(directory: directory, disk: disk)
        guard var manifest = try files.manifest() else { return }
        var removed: [String] = []
        for name in dimensions.keys where names.dimensions[name] == nil {
            if let file = manifest.vectors[name]?.file { removed += [file, SegmentFiles.flagsFile(of: file)] }
            manifest.vectors[name] = nil
            dropColumn(name)
        }
        for name in multiColumns.keys where !names.multi.contains(name) {
            if let prefix = manifest.multi?[name]?.file { removed += [prefix + ".bin", prefix + "-offsets.bin"] }
            manifest.multi?[name] = nil
            multiColumns[name] = nil
            multiIndexes[name] = nil
        }
        for name in sparseColumns.keys where !names.sparse.contains(name) {
            if let prefix = manifest.sparse?[name]?.file {
                removed += [prefix + ".bin", prefix + "-offsets.bin", "has-" + prefix + ".bin", prefix + "-postings.bin"]
            }
            manifest.sparse?[name] = nil
            sparseColumns[name] = nil
        }
        guard !removed.isEmpty else { return }
        try files.writeManifest(manifest)
        for file in removed { try? disk.removeItem(joinPath(directory, file)) }
        removeUnusedIndexFiles(disk: disk)
    }
}
