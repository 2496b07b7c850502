#if canImport(Glibc)
import Glibc
#endif
import CFileSystem
import Storage
import Synchronization

/// The process's memory as the quotas read it, from Linux's `/proc` and cgroup files: the resident
/// anonymous memory (`RssAnon` — pages of mapped files, such as `on_disk` vectors, are left out, as
/// the kernel takes them back when it needs room), and the least of the machine's memory and the
/// limits of the process's memory cgroups (v1 or v2, every level up to the root).
/// Elsewhere than on Linux both are unknown, and the memory quota is not enforced.
struct ProcessMemory: MemoryGauge {
    func residentBytes() -> UInt64? {
        guard let status = Self.read("/proc/self/status") else { return nil }
        return Self.kilobytes(field: "RssAnon:", in: status)
    }

    /// Read again at most every 5 s (the limits hardly change; the files are several).
    func totalBytes() -> UInt64? {
        let now = ContinuousClock.now
        if let (total, at) = Self.lastTotal.withLock({ $0 }), now - at < .seconds(5) { return total }
        var total = Self.read("/proc/meminfo").flatMap { Self.kilobytes(field: "MemTotal:", in: $0) }
        for limit in Self.cgroupLimits() where limit < total ?? .max { total = limit }
        Self.lastTotal.withLock { $0 = (total, now) }
        return total
    }

    private static let lastTotal = Mutex<(UInt64?, ContinuousClock.Instant)?>(nil)

    /// Gives the memory the allocator holds free back to the system: freed buffers (a batch's
    /// vectors, a rewritten segment's) would otherwise stay resident in its arenas.
    static func releaseFreeMemory() {
        quiver_release_free_memory()
    }

    /// `field`'s value in kB in a `/proc` file of `name: value kB` lines, in bytes.
    static func kilobytes(field: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            let number = line.dropFirst(field.count).split(whereSeparator: \.isWhitespace).first
            return number.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// The memory limits of the cgroups this process is in, and of their parents.
    static func cgroupLimits() -> [UInt64] {
        guard let membership = read("/proc/self/cgroup") else { return [] }
        var limits: [UInt64] = []
        for line in membership.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",")
            let (roots, file): ([String], String)
            if parts[0] == "0" && parts[1].isEmpty {
                (roots, file) = (["/sys/fs/cgroup", "/sys/fs/cgroup/unified"], "memory.max")
            } else if controllers.contains("memory") {
                (roots, file) = (["/sys/fs/cgroup/memory"], "memory.limit_in_bytes")
            } else {
                continue
            }
            // Inside a cgroup namespace the path shown may not exist under the mount: the levels
            // that do are read.
            var path = String(parts[2])
            while true {
                for root in roots {
                    if let text = read(root + (path == "/" ? "" : path) + "/" + file), let limit = UInt64(text.trimmingSpaces),
                       limit < 1 << 60 {
                        limits.append(limit)
                    }
                }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        return limits
    }

    /// A small file's text (`/proc` and cgroup files report no size, so it is read until the end).
    static func read(_ path: String) -> String? {
        #if os(Linux)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
        #else
        return nil
        #endif
    }
}
