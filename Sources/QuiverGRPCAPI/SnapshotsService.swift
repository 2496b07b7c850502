import SwiftProtobuf
import Foundation
import GRPCCore
import QuiverService

/// `qdrant.Snapshots`: collection and full snapshots (their files are downloaded over REST, as
/// with Qdrant).
struct SnapshotsService: Qdrant_Snapshots.SimpleServiceProtocol {
    let service: QuiverService

    private static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    func create(request: Qdrant_CreateSnapshotRequest, context: ServerContext) async throws -> Qdrant_CreateSnapshotResponse {
        try await timed { () async throws(ServiceError) in try await service.createSnapshot(request.collectionName, now: Self.now) } respond: { s, time in
            Qdrant_CreateSnapshotResponse.with { $0.snapshotDescription = Outbound.snapshot(s); $0.time = time }
        }
    }

    func list(request: Qdrant_ListSnapshotsRequest, context: ServerContext) async throws -> Qdrant_ListSnapshotsResponse {
        try await timed { () async throws(ServiceError) in try await service.listSnapshots(request.collectionName) } respond: { list, time in
            Qdrant_ListSnapshotsResponse.with { $0.snapshotDescriptions = list.map(Outbound.snapshot); $0.time = time }
        }
    }

    func delete(request: Qdrant_DeleteSnapshotRequest, context: ServerContext) async throws -> Qdrant_DeleteSnapshotResponse {
        try await timed { () async throws(ServiceError) in
            try await service.deleteSnapshot(request.collectionName, request.snapshotName)
        } respond: { _, time in Qdrant_DeleteSnapshotResponse.with { $0.time = time } }
    }

    func createFull(request: Qdrant_CreateFullSnapshotRequest, context: ServerContext) async throws -> Qdrant_CreateSnapshotResponse {
        try await timed { () async throws(ServiceError) in try await service.createFullSnapshot(now: Self.now) } respond: { s, time in
            Qdrant_CreateSnapshotResponse.with { $0.snapshotDescription = Outbound.snapshot(s); $0.time = time }
        }
    }

    func listFull(request: Qdrant_ListFullSnapshotsRequest, context: ServerContext) async throws -> Qdrant_ListSnapshotsResponse {
        try await timed { () async throws(ServiceError) in try await service.listFullSnapshots() } respond: { list, time in
            Qdrant_ListSnapshotsResponse.with { $0.snapshotDescriptions = list.map(Outbound.snapshot); $0.time = time }
        }
    }

    func deleteFull(request: Qdrant_DeleteFullSnapshotRequest, context: ServerContext) async throws -> Qdrant_DeleteSnapshotResponse {
        try await timed { () async throws(ServiceError) in try await service.deleteFullSnapshot(request.snapshotName) } respond: { _, time in
            Qdrant_DeleteSnapshotResponse.with { $0.time = time }
        }
    }
}

/// `qdrant.Qdrant`: the name and version, as REST's `GET /`.
struct QdrantInfoService: Qdrant_Qdrant.SimpleServiceProtocol {
    let commit: String?

    func healthCheck(request: Qdrant_HealthCheckRequest, context: ServerContext) async throws -> Qdrant_HealthCheckReply {
        Qdrant_HealthCheckReply.with {
            $0.title = QuiverService.title
            $0.version = QuiverService.apiVersion
            if let commit { $0.commit = commit }
        }
    }
}

/// `grpc.health.v1.Health`: SERVING for the whole server ("") and for each public service.
struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    static let services: Set<String> = ["", "qdrant.Qdrant", "qdrant.Collections", "qdrant.Points", "qdrant.Snapshots"]

    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.services.contains(request.service) else { throw RPCError(code: .notFound, message: "unknown service \(request.service)") }
        return Grpc_Health_V1_HealthCheckResponse.with { $0.status = .serving }
    }
}
