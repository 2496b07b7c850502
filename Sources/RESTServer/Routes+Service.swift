import Foundation
import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// `/`, health probes, `/metrics`, `/telemetry`.
extension Routes {
    func addServiceRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ -> Response in
            let info: JSONValue = [
                "title": .string(QuiverService.title),
                "version": .string(QuiverService.apiVersion),
                "commit": configuration.commit.map(JSONValue.string) ?? .null,
            ]
            return APIResponse.json(.ok, JSONWriter.write(info))
        }
        router.get("/healthz") { _, _ in APIResponse.text(.ok, "healthz check passed") }
        router.get("/livez") { _, _ in APIResponse.text(.ok, "healthz check passed") }
        // A single node is ready as soon as storage is loaded, which happens before the server binds;
        // a cluster peer once it has applied everything the leader has committed.
        router.get("/readyz") { _, _ in
            guard await service.isReady() else { return APIResponse.text(.serviceUnavailable, "some shards are not ready") }
            // Ready to serve reads; a node refusing writes for want of disk space says why.
            if let refusal = service.writeRefusal { return APIResponse.text(.ok, "all shards are ready; writes are refused: \(refusal)") }
            return APIResponse.text(.ok, "all shards are ready")
        }
        router.get("/metrics") { _, _ -> Response in
            do throws(ServiceError) {
                try Access.requireGlobal(manage: false)
            } catch {
                return APIResponse.error(error, since: .now)
            }
            let count = await service.collectionCount()
            var gauges = [("collections_total", "number of collections", count),
                          ("cluster_enabled", "whether cluster mode is enabled", service.cluster == nil ? 0 : 1)]
            if case .enabled(let cluster) = service.clusterStatus() {
                gauges += [
                    ("cluster_peers_total", "total number of cluster peers", cluster.peers.count),
                    ("cluster_term", "current cluster term", Int(cluster.raftInfo.term)),
                    ("cluster_commit", "index of last committed (finalized) operation cluster peer is aware of", Int(cluster.raftInfo.commit)),
                    ("cluster_pending_operations_total", "total number of pending operations for cluster peer", Int(cluster.raftInfo.pendingOperations)),
                    ("cluster_voter", "whether the cluster peer is a voter or learner", cluster.raftInfo.isVoter ? 1 : 0),
                ]
            }
            // A resource the quotas do not enforce has no series.
            var quota: [(String, Int)] = []
            if let exceeded = service.quotaExceeded {
                if let memory = exceeded.residentMemory { quota.append(("resource=\"memory\"", memory ? 1 : 0)) }
                if let disk = exceeded.diskUsage { quota.append(("resource=\"disk\"", disk ? 1 : 0)) }
            }
            let text = metrics.render(appName: "quiver", version: QuiverService.apiVersion, gauges: gauges,
                                      labelled: [("quota_exceeded", "whether updates are refused over the node's quota on this resource", quota)])
            return APIResponse.text(.ok, text, contentType: "text/plain; version=0.0.4")
        }
        router.get("/telemetry") { request, _ -> Response in
            await respond { () async throws(ServiceError) -> JSONValue in
                var level = 0
                if let raw = request.uri.queryParameters.get("details_level") {
                    guard let value = Int(raw), value >= 0 else {
                        throw .format("details_level: invalid digit found in string `\(raw)`", .query)
                    }
                    level = value
                }
                _ = try request.positiveQueryInt("timeout")
                return await service.telemetry(id: nodeID, startup: startedAt.rfc3339, detailsLevel: level,
                                               requests: metrics.telemetry(level: level))
            }
        }
    }
}
