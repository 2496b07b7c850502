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

    public static let empty = ByteRegion(bytes: UnsafeRawBufferPointer(start: nil, count: 0)) { _ in }

    deinit { release(bytes) }

    public var count: Int { bytes.count }

    /// Tells the kernel that a mapped region is read at random (graph links, vectors chosen by a
    /// search): no read-ahead around each page, which would fill the page cache with neighbours
    /// nobody asked for and push out pages in use when memory is short. Call it after any
    /// sequential pass (a checksum), which read-ahead speeds up.
    public func adviseRandomAccess() {
        #if os(Linux)
        guard let start = bytes.baseAddress, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let begin = Int(bitPattern: start) & ~(page - 1)
        _ = madvise(UnsafeMutableRawPointer(bitPattern: begin), Int(bitPattern: start) + count - begin, MADV_RANDOM)
        #endif
    }
}

extension PosixDisk {
    /// Reads `path` straight into memory the region owns (one copy, no intermediate array).
    public func readRegion(_ path: String) throws(DiskError) -> ByteRegion {
        try withOpenFile(path) { (fd, size) throws(DiskError) in try read(fd, size, path) }
    }

    private func read(_ fd: Int32, _ size: Int, _ path: String) throws(DiskError) -> ByteRegion {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 64)
        adviseHugePages(memory.baseAddress!, count: memory.count)
        var done = 0
        while done < size {
            let n = pread(fd, memory.baseAddress! + done, size - done, off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = n == 0 ? DiskError(operation: "read", path: path, errno: 0, reason: "file shrank while read") : failure("read", path)
                memory.deallocate()
                throw error
            }
            done += n
        }
        return ByteRegion(bytes: UnsafeRawBufferPointer(rebasing: memory[0..<size])) { region in
            region.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
        }
    }

    /// Maps `path` read-only, shared: reads come from the page cache, nothing is copied.
    public func map(_ path: String) throws(DiskError) -> ByteRegion {
        try withOpenFile(path) { (fd, size) throws(DiskError) in
            guard size > 0 else { return .empty }
            guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
                throw failure("mmap", path)
            }
            return ByteRegion(bytes: UnsafeRawBufferPointer(start: base, count: size)) { region in
                munmap(UnsafeMutableRawPointer(mutating: region.baseAddress), region.count)
            }
        }
    }

    /// Opens `path` read-only and calls `body` with the descriptor and the file's size.
    private func withOpenFile<R>(_ path: String, _ body: (Int32, Int) throws(DiskError) -> R) throws(DiskError) -> R {
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw failure("open", path) }
        defer { systemClose(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("fstat", path) }
        return try body(fd, Int(info.st_size))
    }
}

/// Asks the kernel to back the whole 2 MiB pages inside `count` bytes at `start` with huge pages
/// (transparent huge pages in `madvise` mode): far fewer TLB misses for large arrays read at
/// random, such as graphs and vectors. Only memory not yet touched gets them, so call it before
/// the first write.
public func adviseHugePages(_ start: UnsafeMutableRawPointer, count: Int) {
    #if os(Linux)
    let huge = 2 << 20
    let begin = (Int(bitPattern: start) + huge - 1) & ~(huge - 1)
    let end = (Int(bitPattern: start) + count) & ~(huge - 1)
    guard end > begin, let aligned = UnsafeMutableRawPointer(bitPattern: begin) else { return }
    _ = madvise(aligned, end - begin, MADV_HUGEPAGE)
    #endif
}
