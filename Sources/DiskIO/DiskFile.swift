/// An open file with positional IO, for append-only logs and data files.
///
/// Not thread-safe: one owner at a time. Every method may block on IO.
public protocol DiskFile: Sendable {
    var path: String { get }
    /// Current size in bytes.
    func size() throws(DiskError) -> UInt64
    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskError)
    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    func read(count: Int, at offset: UInt64) throws(DiskError) -> [UInt8]
    /// Makes written data durable (fdatasync).
    func sync() throws(DiskError)
    /// Sets the size; growing fills with zeros.
    func truncate(to size: UInt64) throws(DiskError)
    /// Reserves disk space up to `size` bytes (zero-filled) so appends cannot fail for lack of space
    /// and need no metadata update when synced.
    func preallocate(to size: UInt64) throws(DiskError)
    func close()
}

extension DiskFile {
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskError) {
        let result: Result<Void, DiskError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(DiskError) in try write(buffer, at: offset) }
        }
        try result.get()
    }
}

extension Disk {
    /// Opens (and with `create`, creates) a file for reading and writing.
    public func openFile(_ path: String, create: Bool) throws(DiskError) -> any DiskFile {
        try open(path, create: create)
    }
}
