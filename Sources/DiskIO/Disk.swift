/// The file operations the storage layers use. Core code takes a `Disk` rather than calling the
/// OS, so tests can inject failures (a failing fsync, a full disk) and simulate crashes.
///
/// Paths are plain strings; every method is synchronous and may block on IO.
public protocol Disk: Sendable {
    func createDirectory(_ path: String) throws(DiskError)
    func fileExists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Bool
    /// Size and last modification of a file.
    func status(_ path: String) throws(DiskError) -> FileStatus
    /// Bytes free for this process on the file system holding `path`.
    func availableBytes(_ path: String) throws(DiskError) -> UInt64
    /// The size of the file system holding `path`.
    func capacityBytes(_ path: String) throws(DiskError) -> UInt64
    /// The absolute path of an existing entry with every symbolic link, `.` and `..` resolved.
    func canonicalPath(_ path: String) throws(DiskError) -> String
    /// Names (not paths) of the entries of a directory, sorted.
    func listDirectory(_ path: String) throws(DiskError) -> [String]
    func readFile(_ path: String) throws(DiskError) -> [UInt8]
    /// Writes `bytes` to `path` and fsyncs the file (not its directory).
    func writeFile(_ path: String, _ bytes: [UInt8]) throws(DiskError)
    /// Atomic rename; replaces a file at `to`.
    func rename(_ from: String, _ to: String) throws(DiskError)
    /// Swaps two existing entries (files or directories) in one atomic step.
    func exchange(_ a: String, _ b: String) throws(DiskError)
    /// A second name for the file `existing` (a hard link): the same bytes, no copy.
    func link(_ existing: String, _ new: String) throws(DiskError)
    /// Removes a file or a whole directory tree; no error when it is already gone.
    func removeItem(_ path: String) throws(DiskError)
    /// fsyncs a directory, making renames and new entries in it durable.
    func syncDirectory(_ path: String) throws(DiskError)
    /// Opens a file for positional reads and writes (see `DiskFile`).
    func open(_ path: String, create: Bool) throws(DiskError) -> any DiskFile
    /// The bytes of a file that will not change any more, memory-mapped where the disk can.
    func map(_ path: String) throws(DiskError) -> ByteRegion
    /// The bytes of a file copied into memory, for data kept in RAM.
    func readRegion(_ path: String) throws(DiskError) -> ByteRegion
    /// Growing memory for data kept only while the process runs, backed by an unnamed file in
    /// `directory` where the disk can (see `ScratchMemory`).
    func scratchMemory(in directory: String) -> ScratchMemory
}

/// What ``Disk/status(_:)`` reports of a file.
public struct FileStatus: Sendable, Equatable {
    public var size: UInt64
    /// Seconds since 1970-01-01 UTC.
    public var modified: Int64

    public init(size: UInt64, modified: Int64) {
        self.size = size
        self.modified = modified
    }
}

/// An IO failure: what was attempted, on which path, and the OS's reason.
public struct DiskError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let errno: Int32
    public let reason: String

    public init(operation: String, path: String, errno: Int32, reason: String) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.reason = reason
    }

    public var description: String { "\(operation) \(path): \(reason)" }

    /// The file system is full (ENOSPC) or the user's quota is used up (EDQUOT).
    public var isOutOfSpace: Bool { errno == 28 || errno == 122 }
}

extension Disk {
    /// Copies the file `from` to `to` (4 MiB at a time) and fsyncs the copy.
    public func copyFile(_ from: String, _ to: String) throws(DiskError) {
        let source = try open(from, create: false)
        defer { source.close() }
        let target = try open(to, create: true)
        defer { target.close() }
        try target.truncate(to: 0)
        let size = try source.size()
        var offset: UInt64 = 0
        while offset < size {
            let chunk = try source.read(count: Int(min(size - offset, 4 << 20)), at: offset)
            if chunk.isEmpty { break }
            try target.write(chunk, at: offset)
            offset += UInt64(chunk.count)
        }
        try target.sync()
    }

    /// A hard link to `existing` at `new`, or a copy where the file system cannot link (another
    /// device, no hard links).
    public func linkOrCopy(_ existing: String, _ new: String) throws(DiskError) {
        do {
            try link(existing, new)
        } catch {
            try copyFile(existing, new)
        }
    }

    /// Replaces `path` with `bytes` so that after a crash it holds either the old or the new content:
    /// write a temp file beside it, fsync it, rename it over `path`, fsync the directory. A file
    /// (small) that already holds `bytes` is only fsynced, so rewriting what did not change needs
    /// no free space (a node must start on a full disk).
    public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(DiskError) {
        if bytes.count <= 1 << 20, let current = try? status(path), current.size == UInt64(bytes.count), (try? readFile(path)) == bytes {
            // Made durable all the same: an earlier write may have renamed it in and failed to
            // fsync its directory. An fsync needs no free space.
            let file = try open(path, create: false)
            defer { file.close() }
            try file.sync()
            try syncDirectory(parentDirectory(of: path))
            return
        }
        let temp = path + ".tmp"
        do {
            try writeFile(temp, bytes)
        } catch {
            try? removeItem(temp)  // a cut-short copy only takes space
            throw error
        }
        try rename(temp, path)
        try syncDirectory(parentDirectory(of: path))
    }

    /// The paths of the files under `path`, in every directory below it (those that can be read).
    /// Symbolic links are followed (storage may be spread over disks that way), each directory
    /// once: a link back up the tree ends there.
    public func files(under path: String) -> [String] {
        var visited: Set<String> = []
        return files(under: path, visited: &visited)
    }

    private func files(under path: String, visited: inout Set<String>) -> [String] {
        guard isDirectory(path) else { return fileExists(path) ? [path] : [] }
        guard visited.insert((try? canonicalPath(path)) ?? path).inserted else { return [] }
        return ((try? listDirectory(path)) ?? []).flatMap { files(under: joinPath(path, $0), visited: &visited) }
    }

    /// The bytes of the files under `path` (0 when it cannot be read).
    public func directoryBytes(_ path: String) -> UInt64 {
        files(under: path).reduce(0) { $0 + ((try? status($1).size) ?? 0) }
    }

    /// Creates every missing directory on the way to `path`.
    public func createDirectories(_ path: String) throws(DiskError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if !isDirectory(current) { try createDirectory(current) }
        }
    }

    /// Creates the missing directories from `root` (which must exist) down to `path`. A writer
    /// whose tree was moved away (a deleted collection) gets an error instead of its old path back.
    public func createDirectories(_ path: String, below root: String) throws(DiskError) {
        guard path.hasPrefix(root) else { return try createDirectories(path) }
        guard isDirectory(root) else {
            throw DiskError(operation: "create directory", path: path, errno: 0, reason: "\(root) does not exist")
        }
        var current = root
        for component in path.dropFirst(root.count).split(separator: "/") {
            current += "/" + component
            if !isDirectory(current) { try createDirectory(current) }
        }
    }
}

public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let parent = String(path[..<slash])
    return parent.isEmpty ? "/" : parent
}

public func joinPath(_ parts: String...) -> String {
    parts.filter { !$0.isEmpty }.joined(separator: "/")
}
