import Foundation
import Hummingbird
import QuiverJSON
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
        router.get("/livez") { _, _ in APIResponse.text(.ok, "livez check passed") }
        // Single node: ready as soon as storage is loaded, which happens before the server binds.
        router.get("/readyz") { _, _ in APIResponse.text(.ok, "all shards are ready") }
        router.get("/metrics") { _, _ -> Response in
            let count = await service.collectionCount()
            let text = metrics.render(appName: "quiver", version: QuiverService.apiVersion, gauges: [
                ("collections_total", "number of collections", count),
                ("cluster_enabled", "whether cluster mode is enabled", 0),
            ])
            return APIResponse.text(.ok, text, contentType: "text/plain; version=0.0.4")
        }
        router.get("/telemetry") { _, _ -> Response in
            await respond { () async throws(ServiceError) -> JSONValue in
                let count = await service.collectionCount()
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                return [
                    "id": .string(nodeID),
                    "app": [
                        "name": "quiver",
                        "version": .string(QuiverService.apiVersion),
                        "startup": .string(formatter.string(from: startedAt)),
                    ],
                    "collections": ["number_of_collections": .int(Int64(count))],
                ]
            }
        }
    }
}
