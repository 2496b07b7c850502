public import DiskIO

public enum WALError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An IO call failed.
    case io(DiskError)
    /// A record before the tail is damaged: the log cannot be trusted past `sequence` and needs an
    /// operator (restore the shard from a replica or snapshot).
    case corrupted(path: String, offset: Int, reason: String)
    /// An earlier fsync failed; the log accepts nothing more until it is reopened, because the
    /// durability of what it holds is unknown.
    case poisoned(DiskError)
    /// The sequence asked for is no longer (or not yet) in the log.
    case sequenceNotRetained(requested: UInt64, first: UInt64, last: UInt64)
    /// A payload over `WriteAheadLog.recordBytesMax`.
    case recordTooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .io(let error): "WAL IO error: \(error)"
        case .corrupted(let path, let offset, let reason):
            "WAL is corrupted in \(path) at byte \(offset): \(reason). Records after this point cannot be trusted; "
                + "restore the shard from a replica or a snapshot"
        case .poisoned(let error): "WAL stopped accepting writes after a failed fsync: \(error)"
        case .sequenceNotRetained(let requested, let first, let last):
            "WAL record \(requested) is not retained (the log holds \(first)...\(last))"
        case .recordTooLarge(let bytes, let limit): "WAL record of \(bytes) bytes exceeds the limit of \(limit) bytes"
        }
    }
}
