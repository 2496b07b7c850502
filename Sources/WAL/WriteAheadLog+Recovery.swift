import DiskIO

extension WriteAheadLog {
    /// Loads the segments, checks every record, repairs a torn tail, and positions the writer.
    func recover(startSequence: UInt64) throws(WALError) {
        let names: [String]
        do {
            names = try disk.listDirectory(directory)
            // A temp file is a segment whose creation did not finish; it holds no records.
            for name in names where name.hasSuffix(WALFormat.tempSuffix) {
                try disk.removeItem(joinPath(directory, name))
            }
        } catch {
            throw .io(error)
        }
        spareCounter = names.filter { $0.hasSuffix(WALFormat.spareSuffix) }.count
        let found = names.compactMap { name in WALFormat.firstSequence(ofSegmentNamed: name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        segments = []
        for (index, (first, name)) in found.enumerated() {
            let path = joinPath(directory, name)
            let isLast = index == found.count - 1
            var reader: SegmentReader
            do {
                reader = try SegmentReader(path: path, disk: disk)
                try reader.ensure(WALFormat.segmentHeaderBytes)
            } catch {
                throw .io(error)
            }
            guard WALFormat.parseSegmentHeader(reader.bytes[...]) == first else {
                throw .corrupted(path: path, offset: 0, reason: "segment header is damaged or names another sequence")
            }
            if let previous = segments.last, previous.lastSequence + 1 != first {
                throw .corrupted(path: path, offset: 0, reason: "segment starts at \(first), expected \(previous.lastSequence + 1)")
            }
            var offset = WALFormat.segmentHeaderBytes
            var last = first - 1
            scan: while offset < reader.fileSize {
                let decoded: WALFormat.Decoded
                do {
                    decoded = try reader.record(at: offset)
                } catch {
                    throw .io(error)
                }
                switch decoded {
                case .record(let sequence, _, let next) where sequence == last + 1:
                    last = sequence
                    offset = next
                case .end:
                    break scan
                case .record(let sequence, _, _):
                    try damaged(path, &reader, offset, isLast: isLast, reason: "record \(sequence) where \(last + 1) was expected")
                    break scan
                case .invalid(let reason):
                    try damaged(path, &reader, offset, isLast: isLast, reason: reason)
                    break scan
                }
            }
            segments.append(Segment(firstSequence: first, path: path, lastSequence: last))
            if isLast { writeOffset = offset }
        }
        if segments.isEmpty {
            try createFirstSegment(startSequence)
        }
        do {
            file = try disk.open(segments[segments.count - 1].path, create: false)
        } catch {
            throw .io(error)
        }
    }

    /// A damaged record at `offset`. In the last segment with nothing valid after it, it is a torn
    /// write: erase from there on. Anywhere else, the log is corrupted.
    private func damaged(_ path: String, _ reader: inout SegmentReader, _ offset: Int, isLast: Bool, reason: String) throws(WALError) {
        let bytes: [UInt8]
        do {
            bytes = try reader.all()
        } catch {
            throw .io(error)
        }
        guard isLast, !hasValidRecord(bytes, after: offset) else {
            throw .corrupted(path: path, offset: offset, reason: reason)
        }
        do {
            let file = try disk.open(path, create: false)
            let size = try file.size()
            try file.truncate(to: UInt64(offset))
            try file.truncate(to: size)  // zero-fill again up to the segment's size
            try file.sync()
            file.close()
        } catch {
            throw .io(error)
        }
    }

    /// Whether any valid record starts at an 8-byte boundary after `offset` (boundaries of the
    /// file, whatever `offset` is).
    private func hasValidRecord(_ bytes: [UInt8], after offset: Int) -> Bool {
        var candidate = (offset + 8) & ~7
        while candidate + WALFormat.recordHeaderBytes <= bytes.count {
            if case .record = WALFormat.decodeRecord(bytes, at: candidate) { return true }
            candidate += 8
        }
        return false
    }

    private func createFirstSegment(_ startSequence: UInt64) throws(WALError) {
        let path = joinPath(directory, WALFormat.segmentName(firstSequence: startSequence))
        let temp = path + WALFormat.tempSuffix
        do {
            let newFile = try disk.open(temp, create: true)
            try newFile.preallocate(to: UInt64(options.segmentCapacityBytes))
            try newFile.write(WALFormat.segmentHeader(firstSequence: startSequence), at: 0)
            try newFile.sync()
            newFile.close()
            try disk.rename(temp, path)
            try disk.syncDirectory(directory)
        } catch {
            throw .io(error)
        }
        segments = [Segment(firstSequence: startSequence, path: path, lastSequence: startSequence - 1)]
        writeOffset = WALFormat.segmentHeaderBytes
    }
}
