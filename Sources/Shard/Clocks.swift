/// The logical clock an update is sent under (Qdrant's `ClockTag`): the sending peer's clock
/// `clockID` at `tick`, a random `token` telling two sends of one tick apart, and `force` for
/// operations replayed out of order (a transfer's), which every replica takes.
public struct ClockTag: Codable, Sendable, Equatable, Hashable {
    public var peerID: UInt64
    public var clockID: UInt32
    public var tick: UInt64
    public var token: UInt64
    public var force: Bool

    public init(peerID: UInt64, clockID: UInt32, tick: UInt64, token: UInt64, force: Bool = false) {
        self.peerID = peerID
        self.clockID = clockID
        self.tick = tick
        self.token = token
        self.force = force
    }
}

/// A replica's newest tick per sending clock (Qdrant's `ClockMap`): an update is applied only if
/// its tick is newer than any seen from that clock, or is the same send again (same tick and
/// token); otherwise it is rejected and the replica's tick is echoed so the sender can move past
/// it. Tick 0 from an unknown clock is rejected: a fresh sender clock learns the replica's tick
/// that way. Persisted with the shard so a restart cannot take an old duplicate.
public struct ClockMap: Codable, Sendable, Equatable {
    public struct Key: Codable, Sendable, Hashable {
        public var peerID: UInt64
        public var clockID: UInt32
    }

    public struct Entry: Codable, Sendable, Equatable {
        public var tick: UInt64
        public var token: UInt64
    }

    public private(set) var clocks: [Key: Entry] = [:]

    public init() {}

    /// Whether the update tagged `tag` is to be applied; advances the clock when it is newer. On a
    /// rejection `tag.tick` becomes this replica's tick for that clock. A forced tag is accepted
    /// whatever its tick (and still advances the clock).
    public mutating func advance(_ tag: inout ClockTag) -> Bool {
        let key = Key(peerID: tag.peerID, clockID: tag.clockID)
        let accepted: Bool
        if let current = clocks[key] {
            if current.tick < tag.tick {
                clocks[key] = Entry(tick: tag.tick, token: tag.token)
                accepted = true
            } else {
                accepted = current.tick == tag.tick && current.token == tag.token
            }
        } else if tag.tick > 0 {
            clocks[key] = Entry(tick: tag.tick, token: tag.token)
            accepted = true
        } else {
            accepted = false
        }
        if accepted || tag.force { return true }
        tag.tick = clocks[key]?.tick ?? 0
        return false
    }

    /// The newest tick seen from a clock (0 when none).
    public func tick(of peerID: UInt64, clock clockID: UInt32) -> UInt64 { clocks[Key(peerID: peerID, clockID: clockID)]?.tick ?? 0 }

    /// On disk: a list of `{peer_id, clock_id, tick, token}`, sorted.
    struct Stored: Codable {
        var peerID: UInt64
        var clockID: UInt32
        var tick: UInt64
        var token: UInt64

        enum CodingKeys: String, CodingKey { case peerID = "peer_id", clockID = "clock_id", tick, token }
    }

    public init(from decoder: any Decoder) throws {
        for item in try [Stored](from: decoder) {
            clocks[Key(peerID: item.peerID, clockID: item.clockID)] = Entry(tick: item.tick, token: item.token)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try clocks.map { Stored(peerID: $0.key.peerID, clockID: $0.key.clockID, tick: $0.value.tick, token: $0.value.token) }
            .sorted { ($0.peerID, $0.clockID) < ($1.peerID, $1.clockID) }
            .encode(to: encoder)
    }
}

/// The sending side's clocks (Qdrant's `ClockSet`): one per concurrent update, up to `limit`.
/// An update takes a free clock for its whole life (retries included) and gives it back after.
/// A clock never used yet keeps sending tick 0 until a replica's echo advances it.
public struct ClockSet: Sendable, Equatable {
    public static let defaultLimit = 64

    struct Clock: Sendable, Equatable {
        var nextTick: UInt64 = 0
        var available = true
    }

    var clocks: [Clock] = []
    public let limit: Int

    public init(limit: Int = ClockSet.defaultLimit) { self.limit = limit }

    /// A free clock's id, or nil when all `limit` clocks are taken.
    public mutating func acquire() -> UInt32? {
        if let free = clocks.firstIndex(where: \.available) {
            clocks[free].available = false
            return UInt32(free)
        }
        guard clocks.count < limit else { return nil }
        clocks.append(Clock(nextTick: 0, available: false))
        return UInt32(clocks.count - 1)
    }

    public mutating func release(_ id: UInt32) { clocks[Int(id)].available = true }

    /// The tick to send next on clock `id`. A fresh clock stays at 0 until advanced.
    public mutating func tick(_ id: UInt32) -> UInt64 {
        let tick = clocks[Int(id)].nextTick
        if tick > 0 { clocks[Int(id)].nextTick += 1 }
        return tick
    }

    /// Moves clock `id` past `tick` (a replica's echo, or the newest tick a reply showed).
    public mutating func advance(_ id: UInt32, past tick: UInt64) {
        clocks[Int(id)].nextTick = max(clocks[Int(id)].nextTick, tick + 1)
    }
}
