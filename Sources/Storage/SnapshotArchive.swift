import Crypto
public import DiskIO
public import Logging
import Synchronization

/// The archive a snapshot is stored and sent as: a POSIX tar (ustar) of one directory's regular
/// files and subdirectories, under relative paths, with the SHA-256 of the whole archive beside it.
///
/// Reading is where a snapshot from elsewhere first meets the disk, so it trusts nothing: every
/// header's checksum is verified, only regular files and directories are accepted, every path must
/// stay inside the target directory (no absolute paths, no `..`, no empty components), and every
/// entry must fit in what is left of the archive, so a declared size cannot make it write more than
/// the archive holds.
public enum SnapshotArchive {
    static let block = 512

    /// What ``write(_:to:disk:)`` produced.
    public struct Written: Sendable {
        public var size: UInt64
        /// SHA-256 of the archive, lowercase hex.
        public var sha256: String
    }

    /// Archives the tree under `directory` into a new file `archive` (entries in name order) and
    /// fsyncs it.
    public static func write(_ directory: String, to archive: String, disk: any Disk,
                             progress: SnapshotProgress? = nil) throws(StorageError) -> Written {
        do {
            let file = try disk.open(archive, create: true)
            defer { file.close() }
            try file.truncate(to: 0)
            progress?.start(total: try treeSize(directory, disk: disk))
            var writer = Writer(file: file, progress: progress)
            try add(directory, relative: "", disk: disk, to: &writer)
            try writer.append([UInt8](repeating: 0, count: 2 * block))
            try writer.flush()
            try file.sync()
            progress?.finish()
            return Written(size: writer.offset, sha256: hex(writer.hasher.finalize()))
        } catch {
            throw .writeFailed("cannot write snapshot archive \(archive)", error)
        }
    }

    /// The bytes of the regular files under `directory`.
    private static func treeSize(_ directory: String, disk: any Disk) throws(DiskError) -> UInt64 {
        var total: UInt64 = 0
        for name in try disk.listDirectory(directory) {
            let path = joinPath(directory, name)
            total += disk.isDirectory(path) ? try treeSize(path, disk: disk) : try disk.status(path).size
        }
        return total
    }

    private static func add(_ root: String, relative: String, disk: any Disk, to writer: inout Writer) throws(DiskError) {
        let here = relative.isEmpty ? root : joinPath(root, relative)
        for name in try disk.listDirectory(here) {
            let entry = relative.isEmpty ? name : relative + "/" + name
            let path = joinPath(root, entry)
            if disk.isDirectory(path) {
                try writer.append(header(entry + "/", size: 0, type: UInt8(ascii: "5")))
                try add(root, relative: entry, disk: disk, to: &writer)
            } else {
                let source = try disk.open(path, create: false)
                defer { source.close() }
                let size = try source.size()
                try writer.append(header(entry, size: size, type: UInt8(ascii: "0")))
                var offset: UInt64 = 0
                while offset < size {
                    let chunk = try source.read(count: Int(min(size - offset, 4 << 20)), at: offset)
                    if chunk.isEmpty { break }
                    try writer.append(chunk)
                    offset += UInt64(chunk.count)
                }
                guard offset == size else {
                    throw DiskError(operation: "read", path: path, errno: 0, reason: "the file shrank while it was archived")
                }
                let padding = (block - Int(size % UInt64(block))) % block
                try writer.append([UInt8](repeating: 0, count: padding))
            }
        }
    }

    /// Writes through a buffer, hashing as it goes.
    private struct Writer {
        let file: any DiskFile
        let progress: SnapshotProgress?
        var buffer: [UInt8] = []
        var offset: UInt64 = 0
        var hasher = SHA256()

        init(file: any DiskFile, progress: SnapshotProgress?) {
            self.file = file
            self.progress = progress
        }

        mutating func append(_ bytes: [UInt8]) throws(DiskError) {
            hasher.update(data: bytes)
            buffer += bytes
            if buffer.count >= 4 << 20 { try flush() }
        }

        mutating func flush() throws(DiskError) {
            guard !buffer.isEmpty else { return }
            try file.write(buffer, at: offset)
            offset += UInt64(buffer.count)
            progress?.advance(by: UInt64(buffer.count))
            buffer.removeAll(keepingCapacity: true)
        }
    }

    /// A ustar header; a name over 100 bytes is split at a `/` into prefix and name.
    static func header(_ path: String, size: UInt64, type: UInt8) throws(DiskError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: block)
        let utf8 = Array(path.utf8)
        var name = utf8
        var prefix: [UInt8] = []
        if utf8.count > 100 {
            guard let cut = utf8.indices.last(where: { utf8[$0] == UInt8(ascii: "/") && $0 <= 155 && utf8.count - $0 - 1 <= 100 }) else {
                throw DiskError(operation: "archive", path: path, errno: 0, reason: "the path is too long for a tar header")
            }
            prefix = Array(utf8[..<cut])
            name = Array(utf8[(cut + 1)...])
        }
        func put(_ field: [UInt8], at offset: Int) { for (i, byte) in field.enumerated() { bytes[offset + i] = byte } }
        /// `width - 1` octal digits and a NUL, or `width` digits when the value needs them (a size
        /// of 8 GiB or more).
        func octal(_ value: UInt64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            if digits.count == width { return Array(digits.utf8) }
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        guard String(size, radix: 8).count <= 12 else {
            throw DiskError(operation: "archive", path: path, errno: 0, reason: "the file is too large for a tar header (64 GiB or more)")
        }
        put(name, at: 0)
        put(octal(type == UInt8(ascii: "5") ? 0o755 : 0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        bytes[156] = type
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        put(prefix, at: 345)
        put([UInt8](repeating: UInt8(ascii: " "), count: 8), at: 148)
        let sum = bytes.reduce(0) { $0 + UInt64($1) }
        put(octal(sum, width: 7) + [UInt8(ascii: " ")], at: 148)
        return bytes
    }

    // MARK: Reading

    /// Extracts `archive` into `directory` (created; it must not exist), after checking each entry
    /// as the type describes, and makes the tree durable. A bad archive is a ``StorageError/badRequest(_:)`` that names the
    /// problem; whatever was extracted before it stays in `directory` for the caller to remove.
    public static func extract(_ archive: String, into directory: String, disk: any Disk,
                               progress: SnapshotProgress? = nil) throws(StorageError) {
        let file: any DiskFile
        let size: UInt64
        do {
            file = try disk.open(archive, create: false)
            size = try file.size()
            try disk.createDirectories(directory)
        } catch {
            throw .serviceError("cannot read snapshot archive: \(error)")
        }
        defer { file.close() }
        progress?.start(total: size)
        var offset: UInt64 = 0
        var entries = 0
        // Paths extracted so far: an entry may not be both a file and a directory, nor appear twice.
        var files = Set<String>(), directories = Set<String>()
        while true {
            progress?.reach(offset)
            guard offset + UInt64(block) <= size else {
                throw .badRequest("The snapshot archive is truncated: it ends inside an entry header at byte \(offset)")
            }
            let header = try read(file, count: block, at: offset)
            offset += UInt64(block)
            if header.allSatisfy({ $0 == 0 }) { break }  // the end (one zero block is enough)
            entries += 1
            let entry = try parse(header)
            let path = try safePath(entry.path)
            let isDirectory = entry.type == UInt8(ascii: "5")
            let components = path.split(separator: "/")
            for depth in components.indices.dropLast() where files.contains(components[...depth].joined(separator: "/")) {
                throw .badRequest("The snapshot archive entry `\(entry.path)` is inside `\(components[...depth].joined(separator: "/"))`, which it holds as a file")
            }
            if files.contains(path) || (!isDirectory && directories.contains(path)) {
                throw .badRequest("The snapshot archive holds `\(entry.path)` twice")
            }
            if isDirectory { directories.insert(path) } else { files.insert(path) }
            switch entry.type {
            case UInt8(ascii: "5"):
                do {
                    try disk.createDirectories(joinPath(directory, path))
                } catch {
                    throw .serviceError("cannot extract the snapshot: \(error)")
                }
            case UInt8(ascii: "0"), 0:
                guard entry.size <= size - offset else {
                    throw .badRequest("The snapshot archive is truncated: entry `\(entry.path)` declares \(entry.size) bytes, \(size - offset) are left")
                }
                try copy(file, from: offset, count: entry.size, to: joinPath(directory, path), disk: disk)
                offset += (entry.size + UInt64(block) - 1) / UInt64(block) * UInt64(block)
            default:
                let kind = entry.type == UInt8(ascii: "1") || entry.type == UInt8(ascii: "2") ? "a link" : "not a regular file or directory"
                throw .badRequest("The snapshot archive entry `\(entry.path)` is \(kind); snapshots hold only files and directories")
            }
        }
        guard entries > 0 else { throw .badRequest("The snapshot archive is empty") }
        do {
            try syncTree(directory, disk: disk)
        } catch {
            throw .serviceError("cannot extract the snapshot: \(error)")
        }
        progress?.reach(size)
        progress?.finish()
    }

    /// fsyncs every directory under `directory` (files are synced as they are written), so the
    /// extracted tree survives a crash once it is renamed into place.
    private static func syncTree(_ directory: String, disk: any Disk) throws(DiskError) {
        for name in try disk.listDirectory(directory) where disk.isDirectory(joinPath(directory, name)) {
            try syncTree(joinPath(directory, name), disk: disk)
        }
        try disk.syncDirectory(directory)
    }

    private static func read(_ file: any DiskFile, count: Int, at offset: UInt64) throws(StorageError) -> [UInt8] {
        do {
            return try file.read(count: count, at: offset)
        } catch {
            throw .serviceError("cannot read snapshot archive: \(error)")
        }
    }

    private static func copy(_ file: any DiskFile, from start: UInt64, count: UInt64, to path: String, disk: any Disk) throws(StorageError) {
        do {
            try disk.createDirectories(parentDirectory(of: path))
            let target = try disk.open(path, create: true)
            defer { target.close() }
            try target.truncate(to: 0)
            var done: UInt64 = 0
            while done < count {
                let chunk = try file.read(count: Int(min(count - done, 4 << 20)), at: start + done)
                if chunk.isEmpty { break }
                try target.write(chunk, at: done)
                done += UInt64(chunk.count)
            }
            try target.sync()
        } catch {
            throw .serviceError("cannot extract the snapshot: \(error)")
        }
    }

    struct Entry {
        var path: String
        var size: UInt64
        var type: UInt8
    }

    static func parse(_ header: [UInt8]) throws(StorageError) -> Entry {
        func field(_ offset: Int, _ length: Int) -> [UInt8] {
            let bytes = header[offset..<(offset + length)]
            return Array(bytes.prefix { $0 != 0 })
        }
        func number(_ offset: Int, _ length: Int) -> UInt64? {
            let text = String(decoding: field(offset, length), as: UTF8.self).trimmingCharacters(in: " ")
            return text.isEmpty ? 0 : UInt64(text, radix: 8)
        }
        guard Array(header[257..<262]) == Array("ustar".utf8) else {
            throw .badRequest("The snapshot is not a tar archive (no ustar header at its start or after an entry)")
        }
        var sum: UInt64 = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? UInt64(UInt8(ascii: " ")) : UInt64(byte) }
        guard let stored = number(148, 8), stored == sum else {
            throw .badRequest("The snapshot archive has a damaged entry header (its checksum does not match)")
        }
        guard let size = number(124, 12) else { throw .badRequest("The snapshot archive has an entry with an unreadable size") }
        let name = String(decoding: field(0, 100), as: UTF8.self)
        // Only POSIX ustar headers have a name prefix there (GNU headers keep times in those bytes).
        let posix = header[262] == 0 && header[263] == UInt8(ascii: "0") && header[264] == UInt8(ascii: "0")
        let prefix = posix ? String(decoding: field(345, 155), as: UTF8.self) : ""
        return Entry(path: prefix.isEmpty ? name : prefix + "/" + name, size: size, type: header[156])
    }

    /// `path` as a relative path inside the target directory, or a refusal.
    static func safePath(_ path: String) throws(StorageError) -> String {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if components.last == "" { components.removeLast() }  // a directory's trailing slash
        guard !path.hasPrefix("/"), !components.isEmpty,
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") }) else {
            throw .badRequest("The snapshot archive entry `\(path)` points outside the snapshot; it is refused")
        }
        return components.joined(separator: "/")
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// SHA-256 of a file, lowercase hex.
    public static func sha256(of path: String, disk: any Disk) throws(StorageError) -> String {
        do {
            let file = try disk.open(path, create: false)
            defer { file.close() }
            let size = try file.size()
            var hasher = SHA256()
            var offset: UInt64 = 0
            while offset < size {
                let chunk = try file.read(count: Int(min(size - offset, 4 << 20)), at: offset)
                if chunk.isEmpty { break }
                hasher.update(data: chunk)
                offset += UInt64(chunk.count)
            }
            return hex(hasher.finalize())
        } catch {
            throw .serviceError("cannot read \(path): \(error)")
        }
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}

/// The progress of a long archive write or extraction, logged at most every `interval`: the bytes
/// done of the total, the rate and the time left.
public final class SnapshotProgress: Sendable {
    private let what: String
    private let logger: Logger
    private let interval: Duration
    private let state = Mutex<(total: UInt64, done: UInt64, started: ContinuousClock.Instant, logged: ContinuousClock.Instant)>(
        (0, 0, .now, .now))

    public init(_ what: String, logger: Logger, interval: Duration = .seconds(5)) {
        self.what = what
        self.logger = logger
        self.interval = interval
    }

    func start(total: UInt64) {
        state.withLock { $0 = (total, 0, .now, .now) }
    }

    func advance(by bytes: UInt64) {
        report { $0 += bytes }
    }

    func reach(_ bytes: UInt64) {
        report { $0 = max($0, bytes) }
    }

    /// Logs the whole: bytes, time and rate.
    func finish() {
        let (done, seconds) = state.withLock { state in (state.done, max((ContinuousClock.now - state.started) / .seconds(1), 0.001)) }
        logger.info("\(what): done, \(done >> 20) MiB in \((seconds * 100).rounded() / 100) s (\(Int(Double(done) / seconds) >> 20) MiB/s)")
    }

    private func report(_ change: (inout UInt64) -> Void) {
        let now = ContinuousClock.now
        let line: String? = state.withLock { state in
            change(&state.done)
            guard now - state.logged >= interval, state.total > 0 else { return nil }
            state.logged = now
            let seconds = max((now - state.started) / .seconds(1), 0.001)
            let rate = Double(state.done) / seconds
            let left = rate > 0 ? Double(state.total - min(state.done, state.total)) / rate : 0
            return "\(Int(Double(state.done) * 100 / Double(state.total)))% (\(state.done >> 20) of \(state.total >> 20) MiB, "
                + "\(Int(rate) >> 20) MiB/s, about \(Int(left.rounded())) s left)"
        }
        if let line { logger.info("\(what): \(line)") }
    }
}
