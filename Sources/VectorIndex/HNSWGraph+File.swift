import CChecksum

/// The graph's file: little-endian u32 magic "QHNS", u32 format 1, u32 m, u32 count, u32 entry
/// point, i32 top level, u32 upper blocks; `count` level bytes padded to 4; `count` i32 first
/// upper blocks; level 0 (`count` × (1 + 2m) u32); upper levels (blocks × (1 + m) u32); then the
/// CRC-32C of all of it.
extension HNSWGraph {
    static let magic: UInt32 = 0x534E_4851 // "QHNS"

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        let levelBytes = (count + 3) / 4 * 4
        out.reserveCapacity(32 + levelBytes + 4 * count + 4 * count * (m0 + 1) + 4 * upperBlocks * (m + 1))
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        for value in [Self.magic, 1, UInt32(m), UInt32(count), entryPoint, UInt32(bitPattern: Int32(maxLevel)), UInt32(upperBlocks)] { append(value) }
        out += UnsafeBufferPointer(start: levels, count: count)
        out += repeatElement(0, count: levelBytes - count)
        for i in 0..<count { append(UInt32(bitPattern: upperStart[i])) }
        for i in 0..<(count * (m0 + 1)) { append(level0[i]) }
        for i in 0..<(upperBlocks * (m + 1)) { append(upper[i]) }
        append(out.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) })
        return out
    }

    /// The graph stored in `bytes`, or nil when they are not a whole graph of this format.
    public static func decode(_ bytes: [UInt8]) -> HNSWGraph? {
        bytes.withUnsafeBytes { raw -> HNSWGraph? in
            guard raw.count >= 32 else { return nil }
            func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
            let body = raw.count - 4
            guard u32(0) == magic, u32(4) == 1, quiver_crc32c(0, raw.baseAddress, body) == u32(body) else { return nil }
            let m = Int(u32(8)), count = Int(u32(12)), blocks = Int(u32(24))
            let levelBytes = (count + 3) / 4 * 4
            guard m >= 2, 28 + levelBytes + 4 * count + 4 * count * (2 * m + 1) + 4 * blocks * (m + 1) == body else { return nil }
            let levels = Array(UnsafeRawBufferPointer(rebasing: raw[28..<(28 + count)]))
            let graph = HNSWGraph(count: count, m: m, levels: levels)
            guard graph.upperBlocks == blocks else { return nil }
            var at = 28 + levelBytes
            for i in 0..<count {
                guard Int32(bitPattern: u32(at)) == graph.upperStart[i] else { return nil }
                at += 4
            }
            for i in 0..<(count * (graph.m0 + 1)) { graph.level0[i] = u32(at); at += 4 }
            for i in 0..<(blocks * (m + 1)) { graph.upper[i] = u32(at); at += 4 }
            graph.entryPoint = u32(16)
            graph.maxLevel = Int(Int32(bitPattern: u32(20)))
            guard count == 0 || Int(graph.entryPoint) < count else { return nil }
            return graph
        }
    }
}
