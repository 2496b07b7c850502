import CFileSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `open(2)`; a free function so that `PosixDisk.open` does not shadow it.
func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

func systemClose(_ fd: Int32) {
    close(fd)
}

/// `Disk` on the local file system through POSIX calls.
public struct PosixDisk: Disk {
    public init() {}

    func failure(_ operation: String, _ path: String) -> DiskError {
        let code = errno
        return DiskError(operation: operation, path: path, errno: code, reason: String(cString: strerror(code)))
    }

    public func createDirectory(_ path: String) throws(DiskError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw failure("mkdir", path) }
    }

    public func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    public func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public func status(_ path: String) throws(DiskError) -> FileStatus {
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure("stat", path) }
        #if canImport(Glibc)
        let modified = Int64(info.st_mtim.tv_sec)
        #else
        let modified = Int64(info.st_mtimespec.tv_sec)
        #endif
        return FileStatus(size: UInt64(info.st_size), modified: modified)
    }

    public func availableBytes(_ path: String) throws(DiskError) -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw failure("statvfs", path) }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    public func capacityBytes(_ path: String) throws(DiskError) -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw failure("statvfs", path) }
        return UInt64(info.f_blocks) * UInt64(info.f_frsize)
    }

    public func canonicalPath(_ path: String) throws(DiskError) -> String {
        guard let resolved = realpath(path, nil) else { throw failure("resolve", path) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func listDirectory(_ path: String) throws(DiskError) -> [String] {
        guard let dir = opendir(path) else { throw failure("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func readFile(_ path: String) throws(DiskError) -> [UInt8] {
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    public func writeFile(_ path: String, _ bytes: [UInt8]) throws(DiskError) {
        let fd = systemOpen(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            offset += n
        }
        if fsync(fd) != 0 { throw failure("fsync", path) }
    }

    public func rename(_ from: String, _ to: String) throws(DiskError) {
        #if canImport(Glibc)
        let result = Glibc.rename(from, to)
        #else
        let result = Darwin.rename(from, to)
        #endif
        if result != 0 { throw failure("rename to \(to)", from) }
    }

    public func exchange(_ a: String, _ b: String) throws(DiskError) {
        if quiver_exchange(a, b) != 0 { throw failure("exchange with \(b)", a) }
    }

    public func link(_ existing: String, _ new: String) throws(DiskError) {
        #if canImport(Glibc)
        let result = Glibc.link(existing, new)
        #else
        let result = Darwin.link(existing, new)
        #endif
        if result != 0 { throw failure("link to \(new)", existing) }
    }

    public func removeItem(_ path: String) throws(DiskError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw failure("stat", path)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) {
                try removeItem(path + "/" + name)
            }
            if rmdir(path) != 0 && errno != ENOENT { throw failure("rmdir", path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw failure("unlink", path)
        }
    }

    public func syncDirectory(_ path: String) throws(DiskError) {
        let fd = systemOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw failure("fsync", path) }
    }
}

extension PosixDisk {
    public func scratchMemory(in directory: String) -> ScratchMemory { ScratchMemory(fileIn: directory) }

    public func open(_ path: String, create: Bool) throws(DiskError) -> any DiskFile {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = systemOpen(path, flags, 0o644)
        guard fd >= 0 else { throw failure("open", path) }
        return PosixFile(fd: fd, path: path)
    }
}

/// `DiskFile` over a POSIX file descriptor.
public final class PosixFile: DiskFile {
    let fd: Int32
    public let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { systemClose(fd) }

    private func failure(_ operation: String) -> DiskError {
        let code = errno
        return DiskError(operation: operation, path: path, errno: code, reason: String(cString: strerror(code)))
    }

    public func size() throws(DiskError) -> UInt64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("fstat") }
        return UInt64(info.st_size)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("pwrite")
            }
            done += n
        }
    }

    public func read(count: Int, at offset: UInt64) throws(DiskError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = result.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("pread")
            }
            if n == 0 { break }
            done += n
        }
        if done < count { result.removeSubrange(done...) }
        return result
    }

    public func sync() throws(DiskError) {
        if fdatasync(fd) != 0 { throw failure("fdatasync") }
    }

    public func truncate(to size: UInt64) throws(DiskError) {
        if ftruncate(fd, off_t(size)) != 0 { throw failure("ftruncate") }
    }

    public func preallocate(to size: UInt64) throws(DiskError) {
        let result = posix_fallocate(fd, 0, off_t(size))
        if result != 0 {
            // Some file systems cannot fallocate; growing the file still reserves the range logically.
            if result == EOPNOTSUPP || result == EINVAL {
                if try self.size() < size { try truncate(to: size) }
                return
            }
            errno = result
            throw failure("posix_fallocate")
        }
    }

    public func close() {}
}
