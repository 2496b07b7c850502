import DiskIO
import Foundation
import QuiverModel
import WAL

/// What one segment holds, for `GET /telemetry` at the most detailed level. Sizes are estimates
/// from the stored element counts, as Qdrant's are.
public struct SegmentTelemetry: Sendable {
    public let uuid: String
    public let isAppendable: Bool
    /// Live points, and offsets deleted but not yet dropped by the optimizer.
    public let points: Int
    public let deletedPoints: Int
    /// Per vector name: live points that have the vector, and how many of them a graph covers.
    public let vectors: [String: Int]
    public let indexedVectors: [String: Int]
    public let vectorBytes: Int
    public let payloadBytes: Int
    /// Bytes kept in memory (vectors and payloads not memory-mapped, ids and versions).
    public let ramBytes: Int
    /// Bytes in the segment's files (none for an appendable segment never flushed).
    public let diskBytes: Int
    /// Payload indexes: indexed points and values per field.
    public let payloadIndexes: [String: (points: Int, values: Int)]
    /// Vectors and payloads read through a memory map rather than held in memory.
    public let mappedVectors: Set<String>
    public let mappedPayloads: Bool
}

/// A shard's figures for `GET /telemetry`.
public struct ShardTelemetry: Sendable {
    public let segments: [SegmentTelemetry]
    /// Points written by optimizations since the shard was opened.
    public let totalOptimizedPoints: Int
    /// Finished optimizations since the shard was opened, failed ones among them, and their durations.
    public let optimizations: OperationTimes
    /// The last operation applied (its WAL sequence number).
    public let lastOperation: UInt64
}

extension LocalShard {
    /// The live vectors held in vector indexes, as Qdrant's `indexed_vectors_count` counts them:
    /// in immutable segments, those in an HNSW graph (dense and multivectors) and the sparse ones
    /// (in the inverted index).
    public var indexedVectorCount: Int {
        var total = 0
        for entry in segments.entries {
            guard let segment = entry.immutable else { continue }
            for name in segment.indexedNames {
                for offset in 0..<segment.totalCount where segment.isLive(at: offset) && segment.hasVector(name, at: offset) { total += 1 }
            }
        }
        return total
    }

    /// With `payloadSizes` false, `payloadBytes` is 0 and payloads are not read.
    public func telemetry(payloadSizes: Bool = true) -> ShardTelemetry {
        ShardTelemetry(segments: segments.entries.map { Self.telemetry($0, payloadSizes: payloadSizes) }, totalOptimizedPoints: optimizedPoints,
                       optimizations: optimizationTimes, lastOperation: wal.lastSequence)
    }

    static func telemetry(_ entry: SegmentEntry, payloadSizes: Bool) -> SegmentTelemetry {
        let data = entry.data
        var vectors: [String: Int] = [:]
        var payloadBytes = 0
        let names = Array(data.dimensions.keys) + data.sparseNames + data.multiNames
        for name in names { vectors[name] = 0 }
        for offset in 0..<data.totalCount where data.isLive(at: offset) {
            for name in names where data.hasVector(name, at: offset) { vectors[name]! += 1 }
            if payloadSizes { payloadBytes += data.payloadBytes(at: offset)?.count ?? 0 }
        }
        var vectorBytes = 0
        var mappedVectorBytes = 0
        var mappedVectors = Set<String>()
        var indexed: [String: Int] = [:]
        var payloadIndexes: [String: (points: Int, values: Int)] = [:]
        let idBytes = data.totalCount * 32
        if let segment = entry.immutable {
            for (name, column) in segment.columns {
                vectorBytes += (vectors[name] ?? 0) * column.dimension * column.elementBytes
                if column.onDisk {
                    mappedVectorBytes += segment.totalCount * column.dimension * column.elementBytes
                    mappedVectors.insert(name)
                }
            }
            let indexedNames = segment.indexedNames
            for name in names { indexed[name] = indexedNames.contains(name) ? vectors[name] ?? 0 : 0 }
            for (field, index) in segment.indexes { payloadIndexes[field] = index.counts(isLive: segment.isLive) }
            let stored = segment.vectorStorageBytes + segment.payloadData.count + idBytes
            let mapped = mappedVectorBytes + (segment.payloadOnDisk ? segment.payloadData.count : 0)
            return SegmentTelemetry(uuid: entry.uuid, isAppendable: false, points: data.liveCount, deletedPoints: segment.deletedCount,
                                    vectors: vectors, indexedVectors: indexed, vectorBytes: vectorBytes, payloadBytes: payloadBytes,
                                    ramBytes: stored - mapped, diskBytes: stored, payloadIndexes: payloadIndexes,
                                    mappedVectors: mappedVectors, mappedPayloads: segment.payloadOnDisk)
        }
        let segment = entry.appendable!
        for (name, count) in vectors {
            vectorBytes += count * (data.dimensions[name] ?? 0) * (segment.vectors[name]?.elementBytes ?? 4)
            indexed[name] = 0
        }
        for (field, index) in segment.indexes { payloadIndexes[field] = index.counts(isLive: segment.isLive) }
        let stored = segment.vectorStorageBytes + payloadBytes + idBytes
        // Vectors in file-backed scratch memory count as mapped, as they are in an immutable segment.
        let fileBacked = Set(segment.vectors.filter(\.value.isFileBacked).keys)
        let scratchBytes = fileBacked.reduce(0) { $0 + segment.totalCount * segment.dimensions[$1]! * segment.vectors[$1]!.elementBytes }
            + (segment.payloads.isFileBacked ? payloadBytes : 0)
        return SegmentTelemetry(uuid: entry.uuid, isAppendable: true, points: data.liveCount, deletedPoints: segment.deletedCount,
                                vectors: vectors, indexedVectors: indexed, vectorBytes: vectorBytes, payloadBytes: payloadBytes,
                                ramBytes: stored - scratchBytes, diskBytes: entry.listed ? stored : 0, payloadIndexes: payloadIndexes,
                                mappedVectors: fileBacked, mappedPayloads: segment.payloads.isFileBacked)
    }
}

extension ImmutableSegment {
    /// The vectors held in a vector index: those with an HNSW graph, and the sparse ones (each
    /// immutable segment keeps an inverted index of them).
    var indexedNames: Set<String> {
        Set(vectorIndexes.keys).union(multiIndexes.keys).union(sparseColumns.keys)
    }
}
