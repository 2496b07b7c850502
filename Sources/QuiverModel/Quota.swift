/// The node-wide resource limits of `GET`/`PUT /quotas` (`QuotaConfig`): the same on every peer
/// of a cluster, each peer enforcing them against its own memory and disk. A limit left out is not
/// enforced; none is while `enabled` is false.
public struct QuotaConfig: Codable, Sendable, Equatable, Validatable {
    public var enabled: Bool
    /// Updates that add data are refused once the process's resident memory reaches this
    /// percentage of the memory available to it.
    public var maxResidentMemoryPercent: UInt8?
    /// Updates that add data are refused once the storage's file system is this full.
    public var maxDiskUsagePercent: UInt8?
    /// How many points below its limit a resource must fall before updates are taken again (nil:
    /// ``defaultReleaseMargin``).
    public var releaseMarginPercent: UInt8?

    public static let defaultReleaseMargin: UInt8 = 5

    public init(enabled: Bool = false, maxResidentMemoryPercent: UInt8? = nil, maxDiskUsagePercent: UInt8? = nil,
                releaseMarginPercent: UInt8? = nil) {
        self.enabled = enabled
        self.maxResidentMemoryPercent = maxResidentMemoryPercent
        self.maxDiskUsagePercent = maxDiskUsagePercent
        self.releaseMarginPercent = releaseMarginPercent
    }

    enum CodingKeys: String, CodingKey {
        case enabled
        case maxResidentMemoryPercent = "max_resident_memory_percent"
        case maxDiskUsagePercent = "max_disk_usage_percent"
        case releaseMarginPercent = "release_margin_percent"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? false
        maxResidentMemoryPercent = try c.decodeIfPresent(UInt8.self, forKey: .maxResidentMemoryPercent)
        maxDiskUsagePercent = try c.decodeIfPresent(UInt8.self, forKey: .maxDiskUsagePercent)
        releaseMarginPercent = try c.decodeIfPresent(UInt8.self, forKey: .releaseMarginPercent)
    }

    /// Limits left out are left out of the JSON too.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(enabled, forKey: .enabled)
        try c.encodeIfPresent(maxResidentMemoryPercent, forKey: .maxResidentMemoryPercent)
        try c.encodeIfPresent(maxDiskUsagePercent, forKey: .maxDiskUsagePercent)
        try c.encodeIfPresent(releaseMarginPercent, forKey: .releaseMarginPercent)
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "max_resident_memory_percent"), maxResidentMemoryPercent, min: 1, max: 100)
        errors.range(fieldPath(path, "max_disk_usage_percent"), maxDiskUsagePercent, min: 1, max: 100)
        errors.range(fieldPath(path, "release_margin_percent"), releaseMarginPercent, max: 100)
    }

    /// The margin in force.
    public var releaseMargin: UInt8 { releaseMarginPercent ?? Self.defaultReleaseMargin }
}

/// How full this node's memory and disk are, in whole percents (rounded down); nil where the
/// platform does not say.
public struct QuotaUsage: Codable, Sendable, Equatable {
    public var residentMemoryPercent: UInt8?
    public var diskUsagePercent: UInt8?

    public init(residentMemoryPercent: UInt8?, diskUsagePercent: UInt8?) {
        self.residentMemoryPercent = residentMemoryPercent
        self.diskUsagePercent = diskUsagePercent
    }

    enum CodingKeys: String, CodingKey {
        case residentMemoryPercent = "resident_memory_percent"
        case diskUsagePercent = "disk_usage_percent"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(residentMemoryPercent, forKey: .residentMemoryPercent)
        try c.encode(diskUsagePercent, forKey: .diskUsagePercent)
    }
}

/// One peer's usage and whether it refuses updates over a quota now (`PeerQuotaUsage`).
public struct PeerQuotaUsage: Codable, Sendable, Equatable {
    public var exceeded: Bool
    public var usage: QuotaUsage

    public init(exceeded: Bool, usage: QuotaUsage) {
        self.exceeded = exceeded
        self.usage = usage
    }

    enum CodingKeys: String, CodingKey { case exceeded }

    public init(from decoder: any Decoder) throws {
        exceeded = try decoder.container(keyedBy: CodingKeys.self).decode(Bool.self, forKey: .exceeded)
        usage = try QuotaUsage(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(exceeded, forKey: .exceeded)
        try usage.encode(to: encoder)
    }
}

/// `GET /quotas`: the configuration, this node's usage, and in a cluster every peer's that answered.
public struct QuotaStatus: Encodable, Sendable, Equatable {
    public var config: QuotaConfig
    public var usage: QuotaUsage
    /// Peer id → its usage; nil (left out) on a single node.
    public var peers: [String: PeerQuotaUsage]?

    public init(config: QuotaConfig, usage: QuotaUsage, peers: [String: PeerQuotaUsage]?) {
        self.config = config
        self.usage = usage
        self.peers = peers
    }

    enum CodingKeys: String, CodingKey { case config, usage, peers }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(config, forKey: .config)
        try c.encode(usage, forKey: .usage)
        if let peers { try c.encode(SortedMap(peers), forKey: .peers) }
    }
}

/// Which enforced limit this node refuses updates over (`QuotaExceeded`): nil for a resource that
/// is not enforced (the quota is off, it has no limit, or it cannot be measured here).
public struct QuotaExceeded: Encodable, Sendable, Equatable {
    public var residentMemory: Bool?
    public var diskUsage: Bool?

    public init(residentMemory: Bool?, diskUsage: Bool?) {
        self.residentMemory = residentMemory
        self.diskUsage = diskUsage
    }

    enum CodingKeys: String, CodingKey {
        case residentMemory = "resident_memory"
        case diskUsage = "disk_usage"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(residentMemory, forKey: .residentMemory)
        try c.encode(diskUsage, forKey: .diskUsage)
    }
}
