import Synchronization

/// Keeps the file system under the storage from filling up. While less than `reserve` bytes are
/// free, writes that add data are refused (`refusal` says why); they are taken again once a margin
/// more is free, so a disk resting on the limit does not flip the node in and out of read-only.
/// Deletes are never refused: they are how an operator makes room.
///
/// The free space is read from the file system (`Disk.availableBytes`) when a write asks and the
/// last reading is older than `maxAge`, on every ask while writes are refused (so they resume as
/// soon as there is room), and whenever `measure()` is called (the server does every second).
public final class SpaceGuard: Sendable {
    public struct Reading: Sendable, Equatable {
        public var available: UInt64
        public var capacity: UInt64
        public var reserve: UInt64
    }

    /// `storage.disk_reserve_mb` unset: the larger of 1% of the file system and 256 MiB, but never
    /// more than a tenth of it (a small volume must still take data).
    public static func defaultReserve(capacity: UInt64) -> UInt64 {
        min(max(capacity / 100, 256 << 20), capacity / 10)
    }

    private struct State {
        var refusing = false
        var reading: Reading?
        var at: ContinuousClock.Instant?
        var refusal: String?
        /// Bytes promised to work under way (``hold(_:usingReserve:)``), counted as used.
        var held: UInt64 = 0
    }

    public let path: String
    private let disk: any Disk
    private let reserveBytes: UInt64?
    private let maxAge: Duration
    private let state = Mutex(State())

    /// `reserve`: bytes to keep free (nil: ``defaultReserve(capacity:)``).
    public init(path: String, disk: any Disk, reserve: UInt64? = nil, maxAge: Duration = .milliseconds(200)) {
        self.path = path
        self.disk = disk
        self.reserveBytes = reserve
        self.maxAge = maxAge
    }

    /// Why writes are refused now, nil when they are not (as of the last reading).
    public var refusal: String? { state.withLock { $0.refusal } }

    /// The last reading, nil before the first.
    public var reading: Reading? { state.withLock { $0.reading } }

    /// Reads the free space now.
    public func measure() {
        let available: UInt64, capacity: UInt64
        do {
            available = try disk.availableBytes(path)
            capacity = try disk.capacityBytes(path)
        } catch {
            return  // a file system that cannot say is not guarded
        }
        let reserve = reserveBytes ?? Self.defaultReserve(capacity: capacity)
        state.withLock { state in
            // What an optimization under way will still write is as good as written.
            let reading = Reading(available: available > state.held ? available - state.held : 0, capacity: capacity, reserve: reserve)
            let available = reading.available
            let was = state.refusing
            state.reading = reading
            state.at = .now
            if was {
                state.refusing = available < reserve + Self.margin(reserve)
            } else {
                state.refusing = available < reserve
            }
            state.refusal = state.refusing ? Self.refusal(reading, was: was) : nil
        }
    }

    /// The refusal for a write that adds data, nil when it may go ahead; reads the disk again when
    /// the last reading is stale or writes are being refused.
    public func admit() -> String? {
        let fresh = state.withLock { state in
            !state.refusing && state.at.map { ContinuousClock.now - $0 < maxAge } == true
        }
        if !fresh { measure() }
        return refusal
    }

    /// The refusal for work that needs `bytes` more on the disk (a snapshot, an optimization), nil
    /// when they fit and leave the reserve free; `usingReserve`: when they fit at all.
    public func room(for bytes: UInt64, usingReserve: Bool = false) -> String? {
        measure()
        guard let reading else { return nil }
        let kept = usingReserve ? 0 : reading.reserve
        if reading.available >= kept, reading.available - kept >= bytes { return nil }
        return "it needs \(Self.size(bytes)) on a disk with \(Self.size(reading.available)) free"
            + (usingReserve ? "" : ", of which \(Self.size(reading.reserve)) are kept in reserve (storage.disk_reserve_mb)")
    }

    /// As ``room(for:usingReserve:)``, and when they fit, counts `bytes` as used until
    /// ``release(_:)``: writes admitted meanwhile cannot take the space the work will fill.
    public func hold(_ bytes: UInt64, usingReserve: Bool = false) -> String? {
        if let refusal = room(for: bytes, usingReserve: usingReserve) { return refusal }
        state.withLock { $0.held += bytes }
        measure()
        return nil
    }

    /// Gives back what ``hold(_:usingReserve:)`` counted.
    public func release(_ bytes: UInt64) {
        state.withLock { $0.held -= min($0.held, bytes) }
        measure()
    }

    /// How far above the reserve free space must climb before writes are taken again.
    static func margin(_ reserve: UInt64) -> UInt64 { max(reserve / 10, 1 << 20) }

    private static func refusal(_ reading: Reading, was: Bool) -> String {
        let resume = reading.reserve + margin(reading.reserve)
        return "The disk holding the storage has \(size(reading.available)) free of \(size(reading.capacity)), "
            + "less than \(was && reading.available >= reading.reserve ? "the \(size(resume)) it needs to take writes again" : "the \(size(reading.reserve)) kept in reserve (storage.disk_reserve_mb)"). "
            + "Help: delete points, snapshots or collections, or free space on the disk; writes resume by themselves once \(size(resume)) are free."
    }

    /// Bytes for people: `12.3 MiB`.
    public static func size(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) bytes" }
        return "\((value * 10).rounded() / 10) \(units[unit])"
    }
}
