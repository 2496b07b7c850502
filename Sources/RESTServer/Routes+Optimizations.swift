import Foundation
import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService
import Shard
import Storage

/// `GET /collections/{c}/optimizations`.
extension Routes {
    func addOptimizationRoutes(to router: Router<BasicRequestContext>) {
        router.get("/collections/:name/optimizations") { request, context in
            await respond { () async throws(ServiceError) -> (OptimizationsReport, Set<String>, Int) in
                let with = Set((request.uri.queryParameters.get("with") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
                for part in with where !["queued", "completed", "idle_segments"].contains(part) {
                    throw .format("with: unknown value `\(part)`, expected `queued`, `completed` or `idle_segments`", .query)
                }
                var limit = 16
                if let raw = request.uri.queryParameters.get("completed_limit") {
                    guard let value = Int(raw), value >= 0 else { throw .format("completed_limit: expected a non-negative integer", .query) }
                    limit = value
                }
                return (try await service.optimizations(collectionName(context)), with, limit)
            } render: { report, with, limit in
                Self.render(report, with: with, completedLimit: limit)
            }
        }
    }

    static func render(_ report: OptimizationsReport, with: Set<String>, completedLimit: Int) -> JSONValue {
        func segment(_ summary: SegmentSummary) -> JSONValue {
            ["uuid": .string(summary.uuid), "points_count": .int(Int64(summary.points))]
        }
        func optimization(_ record: OptimizationRecord) -> JSONValue {
            let status: JSONValue = switch record.status {
            case .optimizing: "optimizing"
            case .done: "done"
            case .failed(let message): ["error": .string(message)]
            }
            var progress = JSONObject([("name", .string(record.optimizer)), ("started_at", .string(record.startedAt.rfc3339))])
            if let finished = record.finishedAt {
                progress["finished_at"] = .string(finished.rfc3339)
                progress["duration_sec"] = .double(finished.timeIntervalSince(record.startedAt))
            }
            return [
                "uuid": .string(record.uuid),
                "optimizer": .string(record.optimizer),
                "status": status,
                "segments": .array(record.segments.map(segment)),
                "progress": .object(progress),
            ]
        }
        var result = JSONObject()
        result["summary"] = [
            "queued_optimizations": .int(Int64(report.queued.count)),
            "queued_segments": .int(Int64(report.queued.reduce(0) { $0 + $1.segments.count })),
            "queued_points": .int(Int64(report.queued.flatMap(\.segments).reduce(0) { $0 + $1.points })),
            "idle_segments": .int(Int64(report.idle.count)),
        ]
        result["running"] = .array(report.running.map(optimization))
        if with.contains("queued") {
            result["queued"] = .array(report.queued.map { ["optimizer": .string($0.optimizer), "segments": .array($0.segments.map(segment))] })
        }
        if with.contains("completed") {
            result["completed"] = .array(report.completed.prefix(completedLimit).map(optimization))
        }
        if with.contains("idle_segments") {
            result["idle_segments"] = .array(report.idle.map(segment))
        }
        return .object(result)
    }
}
