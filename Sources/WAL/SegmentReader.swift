import DiskIO

/// Reads a segment file front to back in windows, so scanning a mostly empty preallocated segment
/// reads only the part that holds records.
struct SegmentReader {
    static let windowBytes = 1 << 20

    let file: any DiskFile
    let fileSize: Int
    private(set) var bytes: [UInt8] = []

    init(path: String, disk: any Disk) throws(DiskError) {
        file = try disk.open(path, create: false)
        fileSize = Int(try file.size())
    }

    /// Makes `bytes` hold at least the first `end` bytes of the file (fewer at its end).
    mutating func ensure(_ end: Int) throws(DiskError) {
        while bytes.count < min(end, fileSize) {
            let want = min(max(Self.windowBytes, end - bytes.count), fileSize - bytes.count)
            let chunk = try file.read(count: want, at: UInt64(bytes.count))
            if chunk.isEmpty { return }
            bytes += chunk
        }
    }

    /// The record at `offset`, reading as much of the file as that needs: through its padding, so
    /// the next record's offset is never cut short by the end of what has been read.
    mutating func record(at offset: Int) throws(DiskError) -> WALFormat.Decoded {
        try ensure(offset + WALFormat.recordHeaderBytes)
        if bytes.count >= offset + WALFormat.recordHeaderBytes {
            let length = Int(WALFormat.readU32(bytes[...], offset))
            try ensure(offset + WALFormat.paddedLength(payload: length))
        }
        return WALFormat.decodeRecord(bytes, at: offset)
    }

    /// The whole file (for the rare scan after a damaged record).
    mutating func all() throws(DiskError) -> [UInt8] {
        try ensure(fileSize)
        return bytes
    }
}
