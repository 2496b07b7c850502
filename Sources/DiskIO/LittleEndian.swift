/// Little-endian integers in byte buffers, for the binary file formats (WAL, segments).
/// `@inlinable` so callers in other modules get it specialised: unspecialised it tripled the time
/// to load a million-point segment.
public enum LittleEndian {
    @inlinable
    public static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Reads a `T` at `offset`; the caller has checked that the bytes are there.
    @inlinable
    public static func read<T: FixedWidthInteger, C: RandomAccessCollection<UInt8>>(_ type: T.Type, _ bytes: C, at offset: C.Index) -> T {
        var value: T = 0
        var index = offset
        for i in 0..<MemoryLayout<T>.size {
            value |= T(bytes[index]) << (8 * i)
            index = bytes.index(after: index)
        }
        return value
    }
}
