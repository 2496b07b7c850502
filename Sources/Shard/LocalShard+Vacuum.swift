import DiskIO
import Foundation
public import QuiverModel
import WAL

/// One optimization, as `GET /collections/{c}/optimizations` reports it.
public struct OptimizationRecord: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        case optimizing, done
        case failed(String)
    }

    public let uuid: String
    public let optimizer: String
    public var status: Status
    /// The segment being replaced and its live points when the optimization started.
    public let segmentUUID: String
    public let segmentPoints: Int
    public let startedAt: Date
    public var finishedAt: Date?
}

/// Vacuum: rewrite the segment without its deleted points, while reads and writes go on.
///
/// 1. On the actor: copy the segment (copy-on-write, cheap) at WAL version V.
/// 2. Off the actor: compact the copy and write it in full to `segment.next/`, manifest at V.
/// 3. On the actor, without suspending: apply the WAL operations after V to the compacted copy,
///    swap the directories (`SegmentFiles.swapIn`), and continue with the compacted segment.
///
/// While a vacuum runs, `persist` keeps the WAL whole, so step 3 and a restart after the swap can
/// replay every operation after V.
extension LocalShard {
    /// Completed optimizations kept for the endpoint.
    static let completedOptimizationsMax = 16

    public var isOptimizing: Bool { vacuumVersion != nil }

    public var segmentInfo: (uuid: String, points: Int) { (segmentUUID, segment.liveCount) }

    /// Whether the deleted share of the segment is over `deletedThreshold` and it holds at least
    /// `minVectors` points (`optimizers_config.deleted_threshold`, `vacuum_min_vector_number`).
    public func needsVacuum(deletedThreshold: Double, minVectors: Int) -> Bool {
        let total = segment.liveCount + segment.deletedCount
        guard vacuumVersion == nil, total >= minVectors, total > 0 else { return false }
        return Double(segment.deletedCount) / Double(total) > deletedThreshold
    }

    public func vacuum() async throws(ShardError) {
        guard vacuumVersion == nil else { return }
        let snapshot = segment
        let version = wal.lastSequence
        vacuumVersion = version
        let newUUID = UUID().uuidString.lowercased()
        var record = OptimizationRecord(uuid: newUUID, optimizer: "vacuum", status: .optimizing, segmentUUID: segmentUUID,
                                        segmentPoints: snapshot.liveCount, startedAt: Date())
        currentOptimization = record
        defer {
            vacuumVersion = nil
            currentOptimization = nil
            record.finishedAt = Date()
            completedOptimizations.append(record)
            if completedOptimizations.count > Self.completedOptimizationsMax { completedOptimizations.removeFirst() }
        }
        do {
            var compacted = try await Self.buildReplacement(snapshot, version: version, uuid: newUUID, files: files)
            try Self.replay(wal, from: version + 1, into: &compacted)
            do {
                try files.swapIn()
            } catch {
                throw ShardError.segment(error)
            }
            segment = compacted
            segmentUUID = newUUID
            sortedIDsCache = nil
            record.status = .done
        } catch let error as ShardError {
            try? files.disk.removeItem(files.nextDirectory)
            record.status = .failed("\(error)")
            throw error
        } catch {
            preconditionFailure("only ShardError is thrown above: \(error)")
        }
    }

    /// Compacts and writes the replacement files; runs on the global executor, not the actor.
    nonisolated static func buildReplacement(_ snapshot: AppendableSegment, version: UInt64, uuid: String,
                                             files: SegmentFiles) async throws(ShardError) -> AppendableSegment {
        var compacted = snapshot.compacted()
        do {
            try files.writeReplacement(compacted, version: version, uuid: uuid)
        } catch {
            throw .segment(error)
        }
        compacted.clearChanges()
        return compacted
    }

    public var optimizations: (running: [OptimizationRecord], completed: [OptimizationRecord]) {
        (currentOptimization.map { [$0] } ?? [], completedOptimizations)
    }
}
