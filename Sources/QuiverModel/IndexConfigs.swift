public import QuiverJSON

/// Effective HNSW parameters of a collection (`HnswConfig`).
public struct HnswConfig: Codable, Sendable, Equatable {
    public var m: Int
    public var efConstruct: Int
    public var fullScanThreshold: Int
    public var maxIndexingThreads: Int
    public var onDisk: Bool?
    public var memory: Memory?
    public var payloadM: Int?
    public var inlineStorage: Bool?

    public init(m: Int = 16, efConstruct: Int = 100, fullScanThreshold: Int = 10_000, maxIndexingThreads: Int = 0,
                onDisk: Bool? = false, payloadM: Int? = nil) {
        self.m = m
        self.efConstruct = efConstruct
        self.fullScanThreshold = fullScanThreshold
        self.maxIndexingThreads = maxIndexingThreads
        self.onDisk = onDisk
        self.payloadM = payloadM
    }

    enum CodingKeys: String, CodingKey {
        case m
        case efConstruct = "ef_construct"
        case fullScanThreshold = "full_scan_threshold"
        case maxIndexingThreads = "max_indexing_threads"
        case onDisk = "on_disk"
        case memory
        case payloadM = "payload_m"
        case inlineStorage = "inline_storage"
    }

    /// `max_indexing_threads`, 0 resolved to `cpus`.
    public func indexingThreads(cpus: Int) -> Int { maxIndexingThreads > 0 ? maxIndexingThreads : max(1, cpus) }

    /// `full_scan_threshold` (KB of vectors) as a number of float32 vectors of `dimension`: what
    /// the search planner compares cardinalities with.
    public func fullScanPoints(dimension: Int) -> Int { fullScanThreshold * 1024 / max(1, dimension * 4) }

    public func applying(_ diff: HnswConfigDiff?) -> HnswConfig {
        guard let diff else { return self }
        var result = self
        if let v = diff.m { result.m = v }
        if let v = diff.efConstruct { result.efConstruct = v }
        if let v = diff.fullScanThreshold { result.fullScanThreshold = v }
        if let v = diff.maxIndexingThreads { result.maxIndexingThreads = v }
        if let v = diff.onDisk { result.onDisk = v }
        if let v = diff.memory { result.memory = v }
        if let v = diff.payloadM { result.payloadM = v }
        if let v = diff.inlineStorage { result.inlineStorage = v }
        return result
    }
}

/// Partial HNSW parameters: in a create or update request, and per vector.
public struct HnswConfigDiff: Codable, Sendable, Equatable, Validatable {
    public var m: Int?
    public var efConstruct: Int?
    public var fullScanThreshold: Int?
    public var maxIndexingThreads: Int?
    public var onDisk: Bool?
    public var memory: Memory?
    public var payloadM: Int?
    public var inlineStorage: Bool?

    public init() {}

    typealias CodingKeys = HnswConfig.CodingKeys

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "m"), m, min: 0)
        errors.range(fieldPath(path, "ef_construct"), efConstruct, min: 4)
        errors.range(fieldPath(path, "full_scan_threshold"), fullScanThreshold, min: 10)
        errors.range(fieldPath(path, "max_indexing_threads"), maxIndexingThreads, min: 0)
        errors.range(fieldPath(path, "payload_m"), payloadM, min: 0)
    }

    /// Merges two diffs; fields set in `other` win.
    public func merging(_ other: HnswConfigDiff?) -> HnswConfigDiff {
        guard let other else { return self }
        var result = self
        if let v = other.m { result.m = v }
        if let v = other.efConstruct { result.efConstruct = v }
        if let v = other.fullScanThreshold { result.fullScanThreshold = v }
        if let v = other.maxIndexingThreads { result.maxIndexingThreads = v }
        if let v = other.onDisk { result.onDisk = v }
        if let v = other.memory { result.memory = v }
        if let v = other.payloadM { result.payloadM = v }
        if let v = other.inlineStorage { result.inlineStorage = v }
        return result
    }
}

/// `max_optimization_threads`: a number, or `"auto"`.
public enum MaxOptimizationThreads: Codable, Sendable, Equatable {
    case auto
    case threads(Int)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(Int.self), n >= 0 {
            self = .threads(n)
        } else if let s = try? container.decode(String.self), s == "auto" {
            self = .auto
        } else {
            throw JSONDecodingError(path: JSONDecodingError.render(decoder.codingPath),
                                    message: "expected a non-negative integer or \"auto\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .auto: try container.encode("auto")
        case .threads(let n): try container.encode(n)
        }
    }
}

/// Effective optimizer parameters (`OptimizersConfig`).
public struct OptimizersConfig: Codable, Sendable, Equatable {
    public var deletedThreshold: Double
    public var vacuumMinVectorNumber: Int
    public var defaultSegmentNumber: Int
    public var maxSegmentSize: Int?
    public var memmapThreshold: Int?
    public var indexingThreshold: Int?
    public var flushIntervalSec: UInt64
    /// `nil` means automatic; a number is a fixed thread count.
    public var maxOptimizationThreads: Int?
    public var preventUnoptimized: Bool?

    /// `indexing_threshold` in KB with Qdrant's default (10,000); 0 turns indexing off.
    public var indexingThresholdKB: Int { indexingThreshold ?? 10_000 }

    public init(deletedThreshold: Double = 0.2, vacuumMinVectorNumber: Int = 1000, defaultSegmentNumber: Int = 0,
                maxSegmentSize: Int? = nil, memmapThreshold: Int? = nil, indexingThreshold: Int? = 10_000,
                flushIntervalSec: UInt64 = 5, maxOptimizationThreads: Int? = nil) {
        self.deletedThreshold = deletedThreshold
        self.vacuumMinVectorNumber = vacuumMinVectorNumber
        self.defaultSegmentNumber = defaultSegmentNumber
        self.maxSegmentSize = maxSegmentSize
        self.memmapThreshold = memmapThreshold
        self.indexingThreshold = indexingThreshold
        self.flushIntervalSec = flushIntervalSec
        self.maxOptimizationThreads = maxOptimizationThreads
    }

    enum CodingKeys: String, CodingKey {
        case deletedThreshold = "deleted_threshold"
        case vacuumMinVectorNumber = "vacuum_min_vector_number"
        case defaultSegmentNumber = "default_segment_number"
        case maxSegmentSize = "max_segment_size"
        case memmapThreshold = "memmap_threshold"
        case indexingThreshold = "indexing_threshold"
        case flushIntervalSec = "flush_interval_sec"
        case maxOptimizationThreads = "max_optimization_threads"
        case preventUnoptimized = "prevent_unoptimized"
    }

    /// Qdrant writes these keys as `null` rather than leaving them out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deletedThreshold, forKey: .deletedThreshold)
        try c.encode(vacuumMinVectorNumber, forKey: .vacuumMinVectorNumber)
        try c.encode(defaultSegmentNumber, forKey: .defaultSegmentNumber)
        try c.encode(maxSegmentSize, forKey: .maxSegmentSize)
        try c.encode(memmapThreshold, forKey: .memmapThreshold)
        try c.encode(indexingThreshold, forKey: .indexingThreshold)
        try c.encode(flushIntervalSec, forKey: .flushIntervalSec)
        try c.encode(maxOptimizationThreads, forKey: .maxOptimizationThreads)
        try c.encodeIfPresent(preventUnoptimized, forKey: .preventUnoptimized)
    }

    public func applying(_ diff: OptimizersConfigDiff?) -> OptimizersConfig {
        guard let diff else { return self }
        var result = self
        if let v = diff.deletedThreshold { result.deletedThreshold = v }
        if let v = diff.vacuumMinVectorNumber { result.vacuumMinVectorNumber = v }
        if let v = diff.defaultSegmentNumber { result.defaultSegmentNumber = v }
        if let v = diff.maxSegmentSize { result.maxSegmentSize = v }
        if let v = diff.memmapThreshold { result.memmapThreshold = v }
        if let v = diff.indexingThreshold { result.indexingThreshold = v }
        if let v = diff.flushIntervalSec { result.flushIntervalSec = v }
        switch diff.maxOptimizationThreads {
        case .auto: result.maxOptimizationThreads = nil
        case .threads(let n): result.maxOptimizationThreads = n
        case nil: break
        }
        if let v = diff.preventUnoptimized { result.preventUnoptimized = v }
        return result
    }
}

public struct OptimizersConfigDiff: Codable, Sendable, Equatable, Validatable {
    public var deletedThreshold: Double?
    public var vacuumMinVectorNumber: Int?
    public var defaultSegmentNumber: Int?
    public var maxSegmentSize: Int?
    public var memmapThreshold: Int?
    public var indexingThreshold: Int?
    public var flushIntervalSec: UInt64?
    public var maxOptimizationThreads: MaxOptimizationThreads?
    public var preventUnoptimized: Bool?

    public init() {}

    typealias CodingKeys = OptimizersConfig.CodingKeys

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "deleted_threshold"), deletedThreshold, min: 0, max: 1)
        errors.range(fieldPath(path, "vacuum_min_vector_number"), vacuumMinVectorNumber, min: 100)
        errors.range(fieldPath(path, "default_segment_number"), defaultSegmentNumber, min: 0)
        errors.range(fieldPath(path, "max_segment_size"), maxSegmentSize, min: 1)
        errors.range(fieldPath(path, "indexing_threshold"), indexingThreshold, min: 0)
    }
}

/// Effective write-ahead-log parameters (`WalConfig`).
public struct WalConfig: Codable, Sendable, Equatable {
    public var walCapacityMb: Int
    public var walSegmentsAhead: Int
    public var walRetainClosed: Int

    public init(walCapacityMb: Int = 32, walSegmentsAhead: Int = 0, walRetainClosed: Int = 1) {
        self.walCapacityMb = walCapacityMb
        self.walSegmentsAhead = walSegmentsAhead
        self.walRetainClosed = walRetainClosed
    }

    enum CodingKeys: String, CodingKey {
        case walCapacityMb = "wal_capacity_mb"
        case walSegmentsAhead = "wal_segments_ahead"
        case walRetainClosed = "wal_retain_closed"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        walCapacityMb = try c.decode(Int.self, forKey: .walCapacityMb)
        walSegmentsAhead = try c.decode(Int.self, forKey: .walSegmentsAhead)
        walRetainClosed = try c.decodeIfPresent(Int.self, forKey: .walRetainClosed) ?? 1
    }

    public func applying(_ diff: WalConfigDiff?) -> WalConfig {
        guard let diff else { return self }
        var result = self
        if let v = diff.walCapacityMb { result.walCapacityMb = v }
        if let v = diff.walSegmentsAhead { result.walSegmentsAhead = v }
        if let v = diff.walRetainClosed { result.walRetainClosed = max(1, v) }
        return result
    }
}

public struct WalConfigDiff: Codable, Sendable, Equatable, Validatable {
    public var walCapacityMb: Int?
    public var walSegmentsAhead: Int?
    public var walRetainClosed: Int?

    public init() {}

    typealias CodingKeys = WalConfig.CodingKeys

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "wal_capacity_mb"), walCapacityMb, min: 1)
        errors.range(fieldPath(path, "wal_segments_ahead"), walSegmentsAhead, min: 0)
        errors.range(fieldPath(path, "wal_retain_closed"), walRetainClosed, min: 0)
    }
}
