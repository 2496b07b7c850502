#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes of a file, either memory-mapped (the page cache holds them; the kernel may
/// evict them under memory pressure) or copied into process memory. The bytes never change while
/// the region lives, so it can be shared between threads.
public final class ByteRegion: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let release: @Sendable (UnsafeRawBufferPointer) -> Void

    init(bytes: UnsafeRawBufferPointer, release: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.bytes = bytes
        self.release = release
    }

    /// A copy of `array` in memory the region owns.
    public convenience init(copying array: [UInt8]) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 64)
        array.withUnsafeBytes { memory.copyMemory(from: $0) }
        self.init(bytes: UnsafeRawBufferPointer(rebasing: memory[0..<array.count])) { region in
            region.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
        }
    }

    public static let empty = ByteRegion(copying: [])

    deinit { release(bytes) }

    public var count: Int { bytes.count }
}

extension PosixDisk {
    /// Maps `path` read-only, shared: reads come from the page cache, nothing is copied.
    public func map(_ path: String) throws(DiskError) -> ByteRegion {
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw failure("open", path) }
        defer { systemClose(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("fstat", path) }
        let size = Int(info.st_size)
        guard size > 0 else { return .empty }
        guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw failure("mmap", path)
        }
        return ByteRegion(bytes: UnsafeRawBufferPointer(start: base, count: size)) { region in
            munmap(UnsafeMutableRawPointer(mutating: region.baseAddress), region.count)
        }
    }
}
