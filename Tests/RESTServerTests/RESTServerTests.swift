import DiskIO
import Foundation
import Hummingbird
import Logging
import QuiverService
import RESTServer
import ServiceLifecycle
import Storage
import Synchronization
import Testing

/// Starts the REST application on a free port over a temporary storage directory, runs `body`
/// with a client, then shuts the server down and removes the directory.
func withServer(bodyLimit: Int = 1 << 20, _ body: (HTTPTestClient) async throws -> Void) async throws {
    let path = NSTemporaryDirectory() + "quiver-rest-\(UUID().uuidString)"
    defer { try? PosixDisk().removeItem(path) }
    let toc = TableOfContent(storagePath: path, disk: PosixDisk(), logger: Logger(label: "test"))
    try await toc.load()
    let port = Mutex<Int?>(nil)
    let app = RESTServer.makeApplication(
        service: try await QuiverService.standalone(toc: toc, disk: PosixDisk(), logger: Logger(label: "test")),
        configuration: RESTConfiguration(host: "127.0.0.1", port: 0, requestBodyBytesMax: bodyLimit, commit: "abc123"),
        logger: Logger(label: "test")
    ) { bound in port.withLock { $0 = bound } }
    try await serve(app, port: port, body)
}

/// Runs `app` in a service group until `body` (with a client of the port the app reports in
/// `port` once bound) returns, then shuts it down.
func serve(_ app: some Service, port: borrowing Mutex<Int?>, _ body: (HTTPTestClient) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        group.addTask { try await serviceGroup.run() }
        var bound: Int?
        for _ in 0..<500 where bound == nil {
            try await Task.sleep(for: .milliseconds(10))
            bound = port.withLock { $0 }
        }
        let client = HTTPTestClient(port: try #require(bound))
        do {
            try await body(client)
        } catch {
            await serviceGroup.triggerGracefulShutdown()
            throw error
        }
        await serviceGroup.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}

@Suite struct RESTServerTests {
    @Test func rootReportsVersionAndCommit() async throws {
        try await withServer { client in
            let reply = try await client.send("GET", "/")
            #expect(reply.status == 200)
            #expect(reply.json["version"] as? String == "1.19.0")
            #expect(reply.json["commit"] as? String == "abc123")
            #expect((reply.json["title"] as? String)?.isEmpty == false)
        }
    }

    @Test func healthProbes() async throws {
        try await withServer { client in
            let healthz = try await client.send("GET", "/healthz")
            let livez = try await client.send("GET", "/livez")
            let readyz = try await client.send("GET", "/readyz")
            #expect(healthz.status == 200 && healthz.body == "healthz check passed")
            #expect(livez.status == 200 && livez.body == "healthz check passed")
            #expect(readyz.status == 200 && readyz.body == "all shards are ready")
        }
    }

    @Test func collectionLifecycleAndEnvelope() async throws {
        try await withServer { client in
            let created = try await client.send("PUT", "/collections/my%20coll", body: #"{"vectors":{"size":3,"distance":"Euclid"}}"#)
            #expect(created.status == 200)
            #expect(created.json["result"] as? Bool == true)
            #expect(created.json["status"] as? String == "ok")
            #expect(created.json["time"] is Double)
            #expect(created.headers["content-type"] == "application/json")

            let info = try await client.send("GET", "/collections/my%20coll").json["result"] as? [String: Any]
            let params = (info?["config"] as? [String: Any])?["params"] as? [String: Any]
            #expect((params?["vectors"] as? [String: Any])?["distance"] as? String == "Euclid")

            let list = try await client.send("GET", "/collections").json["result"] as? [String: Any]
            #expect((list?["collections"] as? [[String: Any]])?.first?["name"] as? String == "my coll")

            #expect(try await client.send("DELETE", "/collections/my%20coll").json["result"] as? Bool == true)
            #expect(try await client.send("DELETE", "/collections/my%20coll").json["result"] as? Bool == false)
        }
    }

    @Test func errorsHaveQdrantShapeAndStatus() async throws {
        try await withServer { client in
            let missing = try await client.send("GET", "/collections/nope")
            #expect(missing.status == 404)
            #expect((missing.json["status"] as? [String: Any])?["error"] as? String == "Not found: Collection `nope` doesn't exist!")
            #expect(missing.json["time"] is Double)

            #expect(try await client.send("PUT", "/collections/c", body: "{oops").status == 400)
            #expect(try await client.send("PUT", "/collections/c", body: #"{"vectors":{"size":"x","distance":"Dot"}}"#).status == 400)
            #expect(try await client.send("PUT", "/collections/c", body: #"{"vectors":{"size":0,"distance":"Dot"}}"#).status == 422)
            #expect(try await client.send("PUT", "/collections/a:b", body: "{}").status == 422)
            #expect(try await client.send("PUT", "/collections/c?timeout=0", body: "{}").status == 422)
            #expect(try await client.send("PUT", "/collections/c", body: "{}").status == 200)
            #expect(try await client.send("PUT", "/collections/c", body: "{}").status == 409)
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await withServer(bodyLimit: 1024) { client in
            let big = #"{"metadata":{"x":""# + String(repeating: "a", count: 4096) + #""}}"#
            let reply = try await client.send("PUT", "/collections/c", body: big)
            #expect(reply.status == 413)
            #expect(((reply.json["status"] as? [String: Any])?["error"] as? String)?.contains("1024 bytes") == true)
            #expect(try await client.send("GET", "/collections/c/exists").json["result"] as? [String: Bool] == ["exists": false])
        }
    }

    @Test func metricsCountResponsesPerEndpoint() async throws {
        try await withServer { client in
            _ = try await client.send("GET", "/collections/nope")
            _ = try await client.send("PUT", "/collections/c", body: "{}")
            let text = try await client.send("GET", "/metrics").body
            #expect(text.contains(#"app_info{name="quiver",version="1.19.0"} 1"#))
            #expect(text.contains("collections_total 1"))
            #expect(text.contains(#"rest_responses_total{method="GET",endpoint="/collections/{collection_name}",status="404"} 1"#))
            #expect(text.contains(#"rest_responses_total{method="PUT",endpoint="/collections/{collection_name}",status="200"} 1"#))
            #expect(text.contains("rest_responses_duration_seconds_bucket"))
        }
    }

    @Test func telemetryReportsCollections() async throws {
        try await withServer { client in
            _ = try await client.send("PUT", "/collections/c", body: "{}")
            let result = try await client.send("GET", "/telemetry").json["result"] as? [String: Any]
            #expect((result?["collections"] as? [String: Any])?["number_of_collections"] as? Int == 1)
            #expect((result?["app"] as? [String: Any])?["version"] as? String == "1.19.0")
        }
    }
}
