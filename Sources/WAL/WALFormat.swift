import CChecksum
import DiskIO

/// On-disk format of WAL segment files.
///
/// A segment is `<first sequence, 20 digits>.wal`:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `QUIVWAL1` |
/// | 8 | 8 | sequence number of the segment's first record (little-endian u64) |
/// | 16 | 4 | CRC-32C of bytes 0..<16 |
/// | 20 | 4 | zero |
/// | 24 | … | records, each starting at a multiple of 8 |
///
/// A record:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | payload length n (little-endian u32) |
/// | 4 | 4 | CRC-32C of bytes 8..<16+n followed by the 4 length bytes |
/// | 8 | 8 | sequence number (little-endian u64, ≥ 1, consecutive) |
/// | 16 | n | payload |
/// | 16+n | 0–7 | zero padding to a multiple of 8 |
///
/// The space after the last record is zero (files are preallocated), so 16 zero bytes where a record
/// header would start mark the end of the log. Sequence numbers start at 1, so no real record has
/// an all-zero header.
enum WALFormat {
    static let magic: [UInt8] = Array("QUIVWAL1".utf8)
    static let segmentHeaderBytes = 24
    static let recordHeaderBytes = 16
    static let fileSuffix = ".wal"
    static let spareSuffix = ".spare"
    static let tempSuffix = ".tmp"

    static func segmentName(firstSequence: UInt64) -> String {
        let digits = String(firstSequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + fileSuffix
    }

    static func firstSequence(ofSegmentNamed name: String) -> UInt64? {
        guard name.hasSuffix(fileSuffix), name.count == 20 + fileSuffix.count else { return nil }
        return UInt64(name.dropLast(fileSuffix.count))
    }

    static func segmentHeader(firstSequence: UInt64) -> [UInt8] {
        var bytes = magic
        append(firstSequence, to: &bytes)
        let crc = checksum(bytes)
        append(crc, to: &bytes)
        append(UInt32(0), to: &bytes)
        return bytes
    }

    /// The first sequence number the header names, or nil when the header is damaged.
    static func parseSegmentHeader(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        guard bytes.count >= segmentHeaderBytes else { return nil }
        let start = bytes.startIndex
        guard Array(bytes[start..<start + 8]) == magic else { return nil }
        guard readU32(bytes, start + 16) == checksum(Array(bytes[start..<start + 16])) else { return nil }
        return readU64(bytes, start + 8)
    }

    static func paddedLength(payload: Int) -> Int {
        (recordHeaderBytes + payload + 7) & ~7
    }

    static func encodeRecord(sequence: UInt64, payload: UnsafeRawBufferPointer, into bytes: inout [UInt8]) {
        let length = UInt32(payload.count)
        var tail: [UInt8] = []
        append(length, to: &tail)
        var sequenceBytes: [UInt8] = []
        append(sequence, to: &sequenceBytes)
        var crc = sequenceBytes.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, 8) }
        crc = quiver_crc32c(crc, payload.baseAddress, payload.count)
        crc = tail.withUnsafeBytes { quiver_crc32c(crc, $0.baseAddress, 4) }
        append(length, to: &bytes)
        append(crc, to: &bytes)
        bytes += sequenceBytes
        bytes.append(contentsOf: payload)
        let padding = paddedLength(payload: payload.count) - recordHeaderBytes - payload.count
        bytes.append(contentsOf: repeatElement(0, count: padding))
    }

    enum Decoded {
        /// A valid record; `next` is the offset after its padding.
        case record(sequence: UInt64, payload: ArraySlice<UInt8>, next: Int)
        /// Zeros where a header would start: the end of the log.
        case end
        /// Anything else: a torn write or corruption.
        case invalid(String)
    }

    /// Decodes the record at `offset` of `bytes` (a whole segment file).
    static func decodeRecord(_ bytes: [UInt8], at offset: Int) -> Decoded {
        guard offset + recordHeaderBytes <= bytes.count else {
            return bytes[offset...].allSatisfy { $0 == 0 } ? .end : .invalid("record header cut off at the end of the file")
        }
        let length = Int(readU32(bytes[...], offset))
        let crc = readU32(bytes[...], offset + 4)
        let sequence = readU64(bytes[...], offset + 8)
        if length == 0 && crc == 0 && sequence == 0 { return .end }
        guard offset + recordHeaderBytes + length <= bytes.count else {
            return .invalid("record of \(length) bytes runs past the end of the file")
        }
        let next = offset + paddedLength(payload: length)
        let payload = bytes[(offset + recordHeaderBytes)..<(offset + recordHeaderBytes + length)]
        var expected = bytes.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress! + offset + 8, 8 + length) }
        expected = bytes.withUnsafeBytes { quiver_crc32c(expected, $0.baseAddress! + offset, 4) }
        guard expected == crc, sequence != 0 else { return .invalid("checksum mismatch") }
        return .record(sequence: sequence, payload: payload, next: min(next, bytes.count))
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        LittleEndian.append(value, to: &bytes)
    }

    static func readU32(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
        LittleEndian.read(UInt32.self, bytes, at: offset)
    }

    static func readU64(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt64 {
        LittleEndian.read(UInt64.self, bytes, at: offset)
    }
}
