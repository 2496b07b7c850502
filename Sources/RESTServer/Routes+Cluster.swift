import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// `/cluster`: status, peer removal, recovery and the replicated metadata keys; `/quotas`.
extension Routes {
    func addClusterRoutes(to router: Router<BasicRequestContext>) {
        router.get("/cluster") { _, _ in
            await respond { () async throws(ServiceError) in
                try Access.requireGlobal(manage: false)
                return service.clusterStatus()
            }
        }
        router.delete("/cluster/peer/:peer_id") { request, context in
            await respond { () async throws(ServiceError) in
                let raw = context.parameters.decoded("peer_id")
                guard let id = UInt64(raw) else {
                    throw .format("peer_id: can not parse `\(raw)` to a u64", .path)
                }
                let timeout = try request.positiveQueryInt("timeout").map { Duration.seconds($0) }
                return try await service.removePeer(id, force: try request.queryBool("force"), drain: try request.queryBool("drain"),
                                                    timeout: timeout)
            }
        }
        router.post("/cluster/recover") { _, _ in
            await respond { () async throws(ServiceError) in try await service.recoverPeer() }
        }
        router.get("/quotas") { _, _ in
            await respond { () async throws(ServiceError) in try await service.quotaStatus() }
        }
        router.put("/quotas") { request, _ in
            var request = request
            return await respond { () async throws(ServiceError) in
                // Either way the answer comes once this peer applied the change.
                _ = try request.queryBool("wait")
                let body = try await request.decodeJSON(QuotaConfig.self, limitBytes: bodyLimit)
                return try await service.setQuotas(body)
            }
        }
        router.get("/cluster/metadata/keys") { _, _ in
            await respond { () async throws(ServiceError) in try service.metadataKeys() }
        }
        router.get("/cluster/metadata/keys/:key") { _, context in
            await respond { () async throws(ServiceError) in try service.metadataKey(context.parameters.decoded("key")) }
        }
        router.put("/cluster/metadata/keys/:key") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                _ = try request.queryBool("wait")
                let value = try await request.parseJSON(limitBytes: bodyLimit)
                return try await service.setMetadataKey(context.parameters.decoded("key"), value, timeout: nil)
            }
        }
        router.delete("/cluster/metadata/keys/:key") { request, context in
            await respond { () async throws(ServiceError) in
                _ = try request.queryBool("wait")
                return try await service.setMetadataKey(context.parameters.decoded("key"), .null, timeout: nil)
            }
        }
    }
}
