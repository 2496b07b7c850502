import DiskIO
import QuiverJSON

extension LocalShard {
    /// Writes a consistent copy of the shard into `directory` (which must not exist): what start-up
    /// would load after ``persist()`` — `segments.json`, the clocks (`newest_clocks.json`, and
    /// `recovery_clocks.json` when the replica is not active) and the segments it lists — without the WAL, whose operations the segments then all contain; a shard opened
    /// from the copy continues the WAL after its version.
    ///
    /// It runs on the shard's actor without suspending, so no write lands in the middle of it, and
    /// it takes only as long as persisting the appendable segments and copying the files that
    /// change in place (ids, deletion flags and manifests, and appendable segments); files an
    /// immutable segment never rewrites are hard links.
    public func snapshot(into directory: String) throws(ShardError) {
        guard !closed else { throw .closed }
        try persist()
        do {
            try disk.createDirectories(joinPath(directory, "segments"))
            for file in ["segments.json", "newest_clocks.json", "recovery_clocks.json"] where disk.fileExists(joinPath(path, file)) {
                try disk.copyFile(joinPath(path, file), joinPath(directory, file))
            }
            let listed = disk.fileExists(listPath)
                ? try JSONValueDecoder().decode(SegmentList.self, from: try disk.readFile(listPath)).segments : []
            for item in listed {
                let source = joinPath(segmentsDirectory, item.uuid)
                let target = joinPath(directory, "segments", item.uuid)
                try disk.createDirectory(target)
                for file in try disk.listDirectory(source) {
                    if item.kind == "immutable" && !Self.rewrittenInPlace.contains(file) {
                        try disk.linkOrCopy(joinPath(source, file), joinPath(target, file))
                    } else {
                        try disk.copyFile(joinPath(source, file), joinPath(target, file))
                    }
                }
            }
        } catch let error as DiskError {
            throw .segment(error)
        } catch {
            throw .segment(DiskError(operation: "snapshot", path: path, errno: 0, reason: "\(error)"))
        }
    }

    /// A snapshot for a `snapshot` transfer: ``snapshot(into:)``, returning the WAL version it
    /// holds every operation up to, and holding the WAL from the next one for `holder`
    /// (``holdWAL(from:for:)``) so the operations after it can be replayed to the target.
    public func snapshotForTransfer(into directory: String, holding holder: UInt64) throws(ShardError) -> UInt64 {
        try snapshot(into: directory)
        walHolds[holder] = persistedVersion + 1
        return persistedVersion
    }

    /// Files of an immutable segment that change after it is written (deletion flags, versions).
    static let rewrittenInPlace: Set<String> = ["ids.bin", "manifest.json"]
}
