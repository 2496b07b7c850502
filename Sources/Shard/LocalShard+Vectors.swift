import DiskIO
public import QuiverModel

/// The vectors a shard's points may have, from the collection's configuration: dense by name with
/// their dimension and datatype, multivectors by name with their rows' dimension, sparse vectors
/// by name.
public struct VectorNames: Sendable, Equatable {
    public var dimensions: [String: Int] = [:]
    public var datatypes: [String: Datatype] = [:]
    public var multi: [String: Int] = [:]
    public var sparse: Set<String> = []
    /// What defines each dense or multivector's space (size, distance, datatype, kind): a name
    /// whose space differs is another vector, whose stored data does not carry over.
    var spaces: [String: String] = [:]

    public init(_ config: CollectionConfig) {
        for (name, params) in config.params.vectors.all {
            if params.multivectorConfig == nil { dimensions[name] = Int(params.size) } else { multi[name] = Int(params.size) }
            datatypes[name] = params.datatype
            spaces[name] = "\(params.size) \(params.distance.rawValue) \(params.datatype?.rawValue ?? "float32") \(params.multivectorConfig != nil)"
        }
        sparse = Set((config.params.sparseVectors ?? [:]).keys)
    }

    /// These names without `removed`.
    func without(_ removed: Set<String>) -> VectorNames {
        var result = self
        for name in removed {
            result.dimensions[name] = nil
            result.datatypes[name] = nil
            result.multi[name] = nil
            result.spaces[name] = nil
            result.sparse.remove(name)
        }
        return result
    }

    /// Whether every vector of the point is one the shard keeps, of its dimension.
    func keeps(_ point: PointStruct) -> Bool {
        point.vectors.allSatisfy { dimensions[$0.key] == $0.value.count } && point.sparse.keys.allSatisfy(sparse.contains)
            && point.multi.allSatisfy { multi[$0.key] == $0.value.dimension }
    }

    /// The point without vectors the shard does not keep.
    func restricted(_ point: PointStruct) -> PointStruct {
        guard !keeps(point) else { return point }
        var point = point
        point.vectors = point.vectors.filter { dimensions[$0.key] == $0.value.count }
        point.sparse = point.sparse.filter { sparse.contains($0.key) }
        point.multi = point.multi.filter { multi[$0.key] == $0.value.dimension }
        return point
    }
}

extension LocalShard {
    /// Named vectors added to or removed from the collection (`PUT`/`DELETE …/vectors/{name}`):
    /// every segment gets an empty column for an added dense vector and loses the data of a
    /// removed one (an immutable segment's files of it are deleted and its manifest rewritten), so
    /// a vector created again under the same name starts empty. A name whose space changed (the
    /// vector was removed and created again while this shard did not see it) is both.
    public func setVectors(_ config: CollectionConfig) throws(ShardError) {
        let names = VectorNames(config)
        let previous = segments.names
        guard names != previous else { return }
        let respaced = Set(previous.spaces.keys.filter { names.spaces[$0] != nil && names.spaces[$0] != previous.spaces[$0] })
        segments.names = names
        // First, so the columns added below go where the new configuration keeps them.
        storage = Self.storage(for: config)
        do {
            for i in segments.entries.indices {
                if !respaced.isEmpty { try segments.entries[i].setVectors(names.without(respaced), disk: disk) }
                try segments.entries[i].setVectors(names, disk: disk)
            }
        } catch {
            throw .segment(error)
        }
        // Once a vector is removed, no operation from before may be replayed: a vector created
        // again under the name would get the old data back.
        let removed = !respaced.isEmpty || previous.spaces.keys.contains { names.spaces[$0] == nil } || !previous.sparse.isSubset(of: names.sparse)
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
        for name in dimensions.keys where names.dimensions[name] != dimensions[name]
            || vectors[name]?.datatypeName != VectorColumn(names.datatypes[name]).datatypeName {
            dimensions[name] = nil
            fileNumbers[name] = nil
            vectors[name] = nil
            hasVector[name] = nil
            changed = true
        }
        for (name, dimension) in names.dimensions where dimensions[name] == nil {
            dimensions[name] = dimension
            fileNumbers[name] = nextFileNumber
            nextFileNumber += 1
            var column = memory.column(name, names.datatypes[name])
            column.appendZeros(ids.count * dimension)
            vectors[name] = column
            hasVector[name] = [Bool](repeating: false, count: ids.count)
            changed = true
        }
        for name in sparse.keys where !names.sparse.contains(name) {
            sparse[name] = nil
            rewriteLogs = true
        }
        for name in multi.keys where names.multi[name] == nil || multi[name]!.vectors.values.contains(where: { $0.dimension != names.multi[name] }) {
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
        func gone(_ name: String) -> Bool {
            names.dimensions[name] != columns[name]?.dimension || columns[name]?.datatype != (names.datatypes[name] ?? .float32)
        }
        func goneMulti(_ name: String) -> Bool {
            names.multi[name] != multiColumns[name]?.dimension || multiColumns[name]?.datatype != (names.datatypes[name] ?? .float32)
        }
        guard dimensions.keys.contains(where: gone) || multiColumns.keys.contains(where: goneMulti)
            || sparseColumns.keys.contains(where: { !names.sparse.contains($0) }) else { return }
        let files = SegmentFiles(directory: directory, disk: disk)
        guard var manifest = try files.manifest() else { return }
        var removed: [String] = []
        for name in dimensions.keys where gone(name) {
            if let file = manifest.vectors[name]?.file { removed += [file, SegmentFiles.flagsFile(of: file)] }
            manifest.vectors[name] = nil
            dropColumn(name)
        }
        for name in multiColumns.keys where goneMulti(name) {
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
