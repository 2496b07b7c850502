import CFileSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writable memory that grows, for data the process keeps only while it runs (the vectors of a
/// segment still taking writes, whose durable copy is in the segment's files). Backed by a file
/// of its own that has no name: when memory is short the kernel writes its pages to the file and
/// drops them, where anonymous memory could only go to swap, so the data can outgrow the memory
/// the process is given. The file is gone when the memory is released, and after a crash.
///
/// Where no such file can be had (no disk, or its blocks cannot be allocated: the disk is full),
/// the memory is the process's own: the contents are the same, only the kernel can no longer
/// drop them. Not synchronized: one owner changes it; copies for other readers are the owner's
/// business (see `copy`).
public final class ScratchMemory: @unchecked Sendable {
    /// The first byte, nil while nothing is reserved.
    public private(set) var base: UnsafeMutableRawPointer?
    /// Bytes that may be used from `base`; all of them read as zero until written.
    public private(set) var capacity = 0
    /// The unnamed file: -2 until the first byte is reserved (opened then, so empty memory holds
    /// no descriptor), -1 for process memory.
    private var fd: Int32
    /// The directory new files go to (copies too); nil for process memory only.
    private let directory: String?

    /// Memory in process memory only.
    public init() {
        fd = -1
        directory = nil
    }

    /// Memory backed by an unnamed file in `directory`, or in process memory when the directory
    /// cannot have one.
    public init(fileIn directory: String) {
        self.directory = directory
        fd = -2
    }

    deinit { release() }

    /// Whether the kernel can write the pages out instead of keeping them resident (empty memory
    /// that will try counts as such).
    public var isFileBacked: Bool { fd != -1 }

    /// Makes at least `bytes` bytes usable, keeping the contents; new bytes read as zero. Grows
    /// by half (at most 64 MiB at a time, in whole MiB), so appending costs amortized constant
    /// time. Never fails: where the file cannot grow, the contents move to process memory.
    public func reserve(_ bytes: Int) {
        guard bytes > capacity else { return }
        let mib = 1 << 20
        let wanted = max(bytes, capacity + min(capacity / 2, 64 * mib))
        let size = (wanted + mib - 1) / mib * mib
        if fd == -2, let directory {
            fd = quiver_open_unnamed(directory)
            if fd < 0 { fd = -1 }
        }
        if fd >= 0, let mapped = mapFile(size) {
            if let base { munmap(base, capacity) }
            base = mapped
            capacity = size
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        if let base {
            memory.copyMemory(from: base, byteCount: capacity)
            if fd >= 0 { munmap(base, capacity) } else { base.deallocate() }
        }
        (memory + capacity).initializeMemory(as: UInt8.self, repeating: 0, count: size - capacity)
        if fd >= 0 {
            systemClose(fd)
            fd = -1
        }
        base = memory
        capacity = size
    }

    /// New memory of the same kind (beside the same file system) holding the first `bytes` bytes.
    public func copy(_ bytes: Int) -> ScratchMemory {
        let other = directory.map { ScratchMemory(fileIn: $0) } ?? ScratchMemory()
        other.reserve(bytes)
        if bytes > 0, let base, let target = other.base { target.copyMemory(from: base, byteCount: bytes) }
        return other
    }

    /// The file grown to `size` bytes, its blocks allocated (on Linux a full disk fails here, not
    /// when a page is first written, which would be a SIGBUS; copy-on-write file systems may still
    /// need blocks when a page is written again, which the disk reserve guards), and mapped again
    /// whole; nil on failure.
    private func mapFile(_ size: Int) -> UnsafeMutableRawPointer? {
        #if os(Linux)
        var result = EINTR
        while result == EINTR { result = posix_fallocate(fd, off_t(capacity), off_t(size - capacity)) }
        guard result == 0 else { return nil }
        #else
        // Darwin: blocks are not allocated ahead, so a full disk can still fault a first write.
        guard ftruncate(fd, off_t(size)) == 0 else { return nil }
        #endif
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else { return nil }
        return mapped
    }

    private func release() {
        if let base {
            if fd >= 0 { munmap(base, capacity) } else { base.deallocate() }
        }
        if fd >= 0 { systemClose(fd) }
        base = nil
        capacity = 0
        fd = -1
    }
}
