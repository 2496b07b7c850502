public import DiskIO
import Synchronization

/// A real `PosixDisk` that fails chosen operations with EIO, for testing what the storage layers do
/// when IO breaks: a failing fsync, a failing write, a rename that does not happen.
public final class FaultyDisk: Disk {
    public enum Operation: String, Sendable {
        case writeFile, rename, exchange, link, syncDirectory, removeItem
        /// `DiskFile.write` on an open file.
        case fileWrite
        /// `DiskFile.sync` (fdatasync) on an open file.
        case fileSync
    }

    private let real = PosixDisk()
    private let rules = Mutex<[(Operation, String)]>([])
    private let injectedCount = Mutex(0)

    public init() {}

    /// Makes every `operation` on a path containing `pathFragment` fail with EIO until `heal()`.
    public func fail(_ operation: Operation, whenPathContains pathFragment: String) {
        rules.withLock { $0.append((operation, pathFragment)) }
    }

    public func heal() { rules.withLock { $0.removeAll() } }

    /// How many operations have failed on purpose so far: a test checks that its fault fired.
    public var injected: Int { injectedCount.withLock { $0 } }

    func check(_ operation: Operation, _ path: String) throws(DiskError) {
        let matches = rules.withLock { $0.contains { $0.0 == operation && path.contains($0.1) } }
        if matches {
            injectedCount.withLock { $0 += 1 }
            throw DiskError(operation: operation.rawValue, path: path, errno: 5, reason: "Input/output error (injected)")
        }
    }

    public func createDirectory(_ path: String) throws(DiskError) { try real.createDirectory(path) }
    public func fileExists(_ path: String) -> Bool { real.fileExists(path) }
    public func isDirectory(_ path: String) -> Bool { real.isDirectory(path) }
    public func status(_ path: String) throws(DiskError) -> FileStatus { try real.status(path) }
    public func canonicalPath(_ path: String) throws(DiskError) -> String { try real.canonicalPath(path) }
    public func availableBytes(_ path: String) throws(DiskError) -> UInt64 {
        if let bytes = free.withLock({ $0 }) { return bytes }
        return try real.availableBytes(path)
    }

    public func capacityBytes(_ path: String) throws(DiskError) -> UInt64 {
        if let bytes = capacity.withLock({ $0 }) { return bytes }
        return try real.capacityBytes(path)
    }

    /// Makes ``capacityBytes(_:)`` report `bytes` (nil: the real figure).
    public func setCapacityBytes(_ bytes: UInt64?) { capacity.withLock { $0 = bytes } }
    private let capacity = Mutex<UInt64?>(nil)

    /// Makes ``availableBytes(_:)`` report `bytes` (nil: the real figure).
    public func setAvailableBytes(_ bytes: UInt64?) { free.withLock { $0 = bytes } }
    private let free = Mutex<UInt64?>(nil)
    public func listDirectory(_ path: String) throws(DiskError) -> [String] { try real.listDirectory(path) }
    public func readFile(_ path: String) throws(DiskError) -> [UInt8] { try real.readFile(path) }
    public func map(_ path: String) throws(DiskError) -> ByteRegion { try real.map(path) }
    public func readRegion(_ path: String) throws(DiskError) -> ByteRegion { try real.readRegion(path) }
    public func scratchMemory(in directory: String) -> ScratchMemory { real.scratchMemory(in: directory) }

    public func writeFile(_ path: String, _ bytes: [UInt8]) throws(DiskError) {
        try check(.writeFile, path)
        try real.writeFile(path, bytes)
    }

    public func rename(_ from: String, _ to: String) throws(DiskError) {
        try check(.rename, from)
        try real.rename(from, to)
    }

    public func exchange(_ a: String, _ b: String) throws(DiskError) {
        try check(.exchange, a)
        try real.exchange(a, b)
    }

    public func link(_ existing: String, _ new: String) throws(DiskError) {
        try check(.link, new)
        try real.link(existing, new)
    }

    public func removeItem(_ path: String) throws(DiskError) {
        try check(.removeItem, path)
        try real.removeItem(path)
    }

    public func syncDirectory(_ path: String) throws(DiskError) {
        try check(.syncDirectory, path)
        try real.syncDirectory(path)
    }

    public func open(_ path: String, create: Bool) throws(DiskError) -> any DiskFile {
        FaultyFile(inner: try real.open(path, create: create), disk: self)
    }
}

/// A file of a `FaultyDisk`: writes and syncs consult the disk's rules.
final class FaultyFile: DiskFile {
    let inner: any DiskFile
    let disk: FaultyDisk
    var path: String { inner.path }

    init(inner: any DiskFile, disk: FaultyDisk) {
        self.inner = inner
        self.disk = disk
    }

    func size() throws(DiskError) -> UInt64 { try inner.size() }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskError) {
        try disk.check(.fileWrite, path)
        try inner.write(bytes, at: offset)
    }

    func read(count: Int, at offset: UInt64) throws(DiskError) -> [UInt8] { try inner.read(count: count, at: offset) }

    func sync() throws(DiskError) {
        try disk.check(.fileSync, path)
        try inner.sync()
    }

    func truncate(to size: UInt64) throws(DiskError) { try inner.truncate(to: size) }
    func preallocate(to size: UInt64) throws(DiskError) { try inner.preallocate(to: size) }
    func close() { inner.close() }
}
