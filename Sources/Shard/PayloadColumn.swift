import DiskIO

/// The payloads of a write segment by offset, as compact JSON. In arrays, or, for a collection
/// whose payloads are stored on disk (`on_disk_payload`), appended to file-backed scratch memory,
/// which the kernel writes out and drops when memory is short, as it does the pages of the
/// sealed segments' mapped payload files. A changed payload is appended anew; the bytes it
/// replaced stay until the segment is compacted or sealed.
struct PayloadColumn: Sendable {
    /// Where an offset's payload lies in scratch memory; `count` -1 when it has none.
    struct Extent: Sendable {
        var start: Int
        var count: Int
    }

    private var arrays: [[UInt8]?] = []
    /// Set for scratch memory; `extents` then holds the offsets.
    private var appended: AppendedBytes?
    private var extents: [Extent] = []

    /// Payloads in arrays, or in `memory` when given.
    init(in memory: ScratchMemory? = nil) {
        appended = memory.map(AppendedBytes.init)
    }

    var count: Int { appended == nil ? arrays.count : extents.count }

    /// Whether the payloads are in memory the kernel can write out and drop.
    var isFileBacked: Bool { appended?.memory.isFileBacked ?? false }

    /// Bytes held in scratch memory, replaced payloads included.
    var scratchBytes: Int { appended?.used ?? 0 }

    /// How many times a payload was set to different bytes: a change is seen without reading the
    /// payload before and after (which could page it in from the file).
    private(set) var changes = 0

    subscript(offset: Int) -> [UInt8]? {
        get {
            guard let appended else { return arrays[offset] }
            let extent = extents[offset]
            guard extent.count > 0 else { return extent.count < 0 ? nil : [] }
            return Array(UnsafeRawBufferPointer(start: appended.memory.base! + extent.start, count: extent.count))
        }
        set {
            guard self[offset] != newValue else { return }  // unchanged: no bytes appended again
            changes += 1
            guard appended != nil else { return arrays[offset] = newValue }
            extents[offset] = store(newValue)
        }
    }

    mutating func append(_ payload: [UInt8]?) {
        guard appended != nil else { return arrays.append(payload) }
        extents.append(store(payload))
    }

    /// The bytes appended to memory no other copy of the column shares (copied first when one does).
    private mutating func store(_ payload: [UInt8]?) -> Extent {
        guard let payload else { return Extent(start: 0, count: -1) }
        if !isKnownUniquelyReferenced(&appended) { appended = appended!.copy() }
        return appended!.append(payload)
    }
}

/// Bytes appended one after another to scratch memory. Changed only through `PayloadColumn`, when
/// it holds the only reference.
final class AppendedBytes: @unchecked Sendable {
    let memory: ScratchMemory
    private(set) var used = 0

    init(_ memory: ScratchMemory) { self.memory = memory }

    func copy() -> AppendedBytes {
        let other = AppendedBytes(memory.copy(used))
        other.used = used
        return other
    }

    func append(_ bytes: [UInt8]) -> PayloadColumn.Extent {
        let extent = PayloadColumn.Extent(start: used, count: bytes.count)
        guard !bytes.isEmpty else { return extent }
        memory.reserve(used + bytes.count)
        bytes.withUnsafeBytes { (memory.base! + used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        used += bytes.count
        return extent
    }
}
