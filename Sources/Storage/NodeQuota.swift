public import DiskIO
import QuiverJSON
public import QuiverModel
import Synchronization

/// How much memory the process holds, and how much it may hold (the server reads `/proc` and the
/// cgroup files; tests give their own numbers).
public protocol MemoryGauge: Sendable {
    /// Memory only this process can give back: its anonymous resident pages. Pages of mapped files
    /// are not counted (the kernel drops them when it needs the room). Nil when unknown.
    func residentBytes() -> UInt64?
    /// The memory available to the process: its cgroup's limit when one applies, else the
    /// machine's. Nil when unknown.
    func totalBytes() -> UInt64?
}

/// The node-wide quotas of `/quotas` (``QuotaConfig``) enforced on this node: updates that add data
/// are refused (507) while its resident memory or its storage's disk usage is at its limit, and
/// taken again once the resource falls a margin below it. Deletes of points are never refused.
///
/// A reading is reused for `maxAge`, except one at or over the threshold it is held to: that is
/// read again at every ask, so updates resume as soon as the resource is freed.
public final class NodeQuota: Sendable {
    public enum Resource: Sendable, CaseIterable {
        case memory, disk
    }

    private struct Reading {
        var percent: UInt8?
        var at: ContinuousClock.Instant
    }

    private struct State {
        /// Set through `/quotas` (consensus or this node's file); nil: the configured default.
        var stored: QuotaConfig?
        /// Counts configuration changes: a verdict reached under an older one is dropped.
        var generation = 0
        var readings: [Resource: Reading] = [:]
        /// Resources that reached their limit and have not yet fallen the margin below it.
        var tripped: Set<Resource> = []
        /// When the reading behind each resource's last verdict was taken: an older one does not
        /// overrule it.
        var verdicts: [Resource: ContinuousClock.Instant] = [:]
    }

    private let storagePath: String
    private let disk: any Disk
    private let memory: (any MemoryGauge)?
    private let defaults: QuotaConfig
    private let file: String?
    private let maxAge: Duration
    private let state: Mutex<State>

    /// `defaults`: the configuration until one is set (`storage.quotas`). `file`: where the one set
    /// through the API is recorded (`quota.json`; a cluster's catalogue holds it too). Throws when
    /// that file does not hold a valid configuration.
    public init(storagePath: String, disk: any Disk, memory: (any MemoryGauge)?, defaults: QuotaConfig = QuotaConfig(),
                file: String? = nil, maxAge: Duration = .seconds(1)) throws(StorageError) {
        self.storagePath = storagePath
        self.disk = disk
        self.memory = memory
        self.defaults = defaults
        self.file = file
        self.maxAge = maxAge
        var stored: QuotaConfig?
        if let file, disk.fileExists(file) {
            do {
                stored = try JSONValueDecoder().decode(QuotaConfig.self, from: try disk.readFile(file)).validated()
            } catch {
                throw .serviceError("cannot read the quota configuration \(file): \(error)")
            }
        }
        state = Mutex(State(stored: stored))
    }

    /// The configuration set through `/quotas`, nil when none was.
    public var stored: QuotaConfig? { state.withLock { $0.stored } }

    /// The configuration in force.
    public var config: QuotaConfig { state.withLock { $0.stored ?? defaults } }

    /// Takes `config` (nil: back to the default) as the one in force; a change clears what tripped
    /// and is recorded in the node's file (best effort: the catalogue of a cluster is the record).
    public func configure(_ config: QuotaConfig?) {
        let changed = state.withLock { state -> Bool in
            guard state.stored != config else { return false }
            state.stored = config
            state.generation += 1
            state.tripped = []
            return true
        }
        if changed, let config { try? record(config) }
    }

    /// A single node's change through the API: recorded in its file first, then in force.
    public func store(_ config: QuotaConfig) throws(StorageError) {
        try storing.withLock { _ throws(StorageError) in
            try record(config)
            configure(config)
        }
    }

    /// One change through the API at a time: the file and the configuration in force agree.
    private let storing = Mutex(())

    private func record(_ config: QuotaConfig) throws(StorageError) {
        guard let file else { return }
        do {
            try disk.writeFileAtomically(file, try JSONValueEncoder().encodeBytes(config))
        } catch {
            throw .writeFailed("cannot record the quota configuration", error)
        }
    }

    /// Why an update that adds data is refused now, nil when it is not. Every resource is checked,
    /// so each one's release is noticed whichever else refuses.
    public func refusal() -> String? {
        let refusals = Resource.allCases.map(check)
        return refusals.compactMap { $0 }.first
    }

    /// Whether each enforced resource is over its quota now (nil where not enforced).
    public func exceeded() -> QuotaExceeded {
        func verdict(_ resource: Resource) -> Bool? {
            guard limit(of: resource) != nil, percent(of: resource) != nil else { return nil }
            return check(resource) != nil
        }
        return QuotaExceeded(residentMemory: verdict(.memory), diskUsage: verdict(.disk))
    }

    /// What this node uses of each resource, read now.
    public func usage() -> QuotaUsage {
        QuotaUsage(residentMemoryPercent: percent(of: .memory, fresh: true), diskUsagePercent: percent(of: .disk, fresh: true))
    }

    /// What this node reports to `GET /quotas` of another peer.
    public func peerUsage() -> PeerQuotaUsage {
        let exceeded = self.exceeded()
        return PeerQuotaUsage(exceeded: exceeded.residentMemory == true || exceeded.diskUsage == true, usage: usage())
    }

    /// The process's resident memory in percent of what it may use, as the quota reads it (for
    /// strict mode's per-collection `max_resident_memory_percent`).
    public func memoryPercent() -> UInt8? { percent(of: .memory) }

    private static func limit(of resource: Resource, in config: QuotaConfig) -> UInt8? {
        guard config.enabled else { return nil }
        return switch resource {
        case .memory: config.maxResidentMemoryPercent
        case .disk: config.maxDiskUsagePercent
        }
    }

    private func limit(of resource: Resource) -> UInt8? { Self.limit(of: resource, in: config) }

    /// The refusal over `resource`, nil when it is within its quota (or not enforced). The
    /// configuration and what tripped are read together; the verdict is kept only when no newer
    /// configuration or reading came meanwhile.
    private func check(_ resource: Resource) -> String? {
        let (config, tripped, generation) = state.withLock { ($0.stored ?? defaults, $0.tripped.contains(resource), $0.generation) }
        guard let limit = Self.limit(of: resource, in: config) else { return nil }
        let release = max(1, Int(limit) - Int(config.releaseMargin))
        let threshold = tripped ? release : Int(limit)
        guard let (used, at) = reading(of: resource, fresh: false, threshold: threshold) else {
            state.withLock { state in
                if state.generation == generation { state.tripped.remove(resource) }
            }
            return nil
        }
        let over = Int(used) >= threshold
        state.withLock { state in
            guard state.generation == generation, state.verdicts[resource].map({ $0 <= at }) ?? true else { return }
            state.verdicts[resource] = at
            if over { state.tripped.insert(resource) } else { state.tripped.remove(resource) }
        }
        guard over else { return nil }
        let (what, whole, field) = switch resource {
        case .memory: ("Resident memory usage", "total memory", "max_resident_memory_percent")
        case .disk: ("Disk usage", "total capacity", "max_disk_usage_percent")
        }
        let state = Int(used) >= Int(limit)
            ? "\(what) is at \(used)% of \(whole), exceeding the configured limit of \(limit)%"
            : "\(what) is at \(used)% of \(whole). It reached the configured limit of \(limit)% and must fall below \(release)% before this node takes updates again"
        let remedy = resource == .disk ? "delete points, snapshots or collections, or free space on the disk"
                                       : "delete points or collections, or move vectors and payloads to disk (on_disk)"
        return "\(state). Help: \(remedy); or raise `\(field)` with PUT /quotas."
    }

    /// `resource`'s usage in whole percents, read again when the last reading is older than
    /// `maxAge`, is at or over `threshold`, or `fresh` asks for it.
    private func percent(of resource: Resource, fresh: Bool = false) -> UInt8? {
        reading(of: resource, fresh: fresh, threshold: 101)?.percent
    }

    /// The same with the time it was read; nil when the resource cannot be measured.
    private func reading(of resource: Resource, fresh: Bool, threshold: Int) -> (percent: UInt8, at: ContinuousClock.Instant)? {
        let now = ContinuousClock.now
        if !fresh, let reading = state.withLock({ $0.readings[resource] }), now - reading.at < maxAge,
           Int(reading.percent ?? 0) < threshold {
            return reading.percent.map { ($0, reading.at) }
        }
        let percent = measure(resource)
        state.withLock { $0.readings[resource] = Reading(percent: percent, at: now) }
        return percent.map { ($0, now) }
    }

    private func measure(_ resource: Resource) -> UInt8? {
        let used: UInt64, total: UInt64
        switch resource {
        case .memory:
            guard let memory, let resident = memory.residentBytes(), let limit = memory.totalBytes() else { return nil }
            (used, total) = (resident, limit)
        case .disk:
            guard let capacity = try? disk.capacityBytes(storagePath), let available = try? disk.availableBytes(storagePath) else { return nil }
            (used, total) = (capacity > available ? capacity - available : 0, capacity)
        }
        guard total > 0 else { return nil }
        // Rounded down, as Qdrant rounds; more than the whole counts as all of it.
        return UInt8((Double(min(used, total)) * 100 / Double(total)).rounded(.down))
    }
}
