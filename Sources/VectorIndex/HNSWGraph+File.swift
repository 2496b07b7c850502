import CChecksum

/// The graph's file, all little-endian and 4-byte aligned: a header of u32 magic "QHNS", u32
/// format 2, u32 m, u32 level-0 capacity, u32 count, u32 entry point, i32 top level, u32 upper
/// blocks; `count` level bytes padded to 4; `count` i32 first upper blocks; level 0 (`count` ×
/// (1 + capacity) u32); upper levels (blocks × (1 + m) u32); then the CRC-32C of all of it.
/// A graph is searched where the file's bytes are (read into memory or memory-mapped).
extension HNSWGraph {
    static let magic: UInt32 = 0x534E_4851 // "QHNS"
    static let headerBytes = 32

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        let levelBytes = (count + 3) / 4 * 4
        out.reserveCapacity(Self.headerBytes + levelBytes + 4 * count + 4 * count * (level0Capacity + 1) + 4 * upperBlocks * (m + 1) + 4)
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        for value in [Self.magic, 2, UInt32(m), UInt32(level0Capacity), UInt32(count), entryPoint,
                      UInt32(bitPattern: Int32(maxLevel)), UInt32(upperBlocks)] { append(value) }
        out += UnsafeBufferPointer(start: levels, count: count)
        out += repeatElement(0, count: levelBytes - count)
        for i in 0..<count { append(UInt32(bitPattern: upperStart[i])) }
        for i in 0..<(count * (level0Capacity + 1)) { append(level0[i]) }
        for i in 0..<(upperBlocks * (m + 1)) { append(upper[i]) }
        append(out.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) })
        return out
    }

    /// The graph stored in `bytes` (copied), or nil when they are not a whole graph of this format.
    public static func decode(_ bytes: [UInt8]) -> HNSWGraph? {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        copy.copyBytes(from: bytes)
        let owner = OwnedBytes(copy)
        return HNSWGraph(file: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]), owner: owner)
    }

    /// The graph in a file's bytes, which `owner` keeps alive and which must be 4-byte aligned;
    /// nil when they are not a whole graph of this format (checksum, sizes, links in range).
    public convenience init?(file raw: UnsafeRawBufferPointer, owner: AnyObject) {
        guard raw.count >= Self.headerBytes + 4, let base = raw.baseAddress, Int(bitPattern: base) % 4 == 0 else { return nil }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let body = raw.count - 4
        guard u32(0) == Self.magic, u32(4) == 2, quiver_crc32c(0, base, body) == u32(body) else { return nil }
        let m = Int(u32(8)), capacity = Int(u32(12)), count = Int(u32(16)), blocks = Int(u32(28))
        let entry = u32(20), top = Int(Int32(bitPattern: u32(24)))
        let levelBytes = (count + 3) / 4 * 4
        let levelsAt = Self.headerBytes, startsAt = levelsAt + levelBytes, level0At = startsAt + 4 * count
        let upperAt = level0At + 4 * count * (capacity + 1)
        guard m >= 2, capacity >= 2 * m, upperAt + 4 * blocks * (m + 1) == body, count == 0 || Int(entry) < count else { return nil }
        let mutable = UnsafeMutableRawPointer(mutating: base)
        let levels = (mutable + levelsAt).assumingMemoryBound(to: UInt8.self)
        let starts = (mutable + startsAt).assumingMemoryBound(to: Int32.self)
        // The upper blocks must be where the levels say, or links would be read out of bounds.
        var expected: Int32 = 0
        for i in 0..<count {
            let level = Int32(levels[i])
            guard starts[i] == (level > 0 ? expected : -1) else { return nil }
            expected += level
        }
        guard Int(expected) == blocks else { return nil }
        self.init(count: count, m: m, level0Capacity: capacity, level0: (mutable + level0At).assumingMemoryBound(to: UInt32.self),
                  levels: levels, upperStart: starts, upper: (mutable + upperAt).assumingMemoryBound(to: UInt32.self),
                  upperBlocks: blocks, entryPoint: entry, maxLevel: top, owner: owner)
        guard linksInRange() else { return nil }
    }

    /// Every stored link names a point of the graph and no block is longer than its capacity.
    func linksInRange() -> Bool {
        let limit = UInt32(count)
        for point in 0..<count {
            let block = level0 + point * (level0Capacity + 1)
            guard Int(block[0]) <= level0Capacity else { return false }
            for i in 0..<Int(block[0]) where block[1 + i] >= limit { return false }
        }
        for b in 0..<upperBlocks {
            let block = upper + b * (m + 1)
            guard Int(block[0]) <= m else { return false }
            for i in 0..<Int(block[0]) where block[1 + i] >= limit { return false }
        }
        return true
    }
}

/// Memory a decoded graph owns.
final class OwnedBytes {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }
    deinit { bytes.deallocate() }
}
