public import Hummingbird
public import Logging
public import QuiverService
import Foundation
import HTTPTypes
import NIOPosix
public import NIOSSL
import Storage
import Synchronization

/// What the REST edge needs to know about the node it serves.
public struct RESTConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Largest request body accepted (`service.max_request_size_mb`).
    public var requestBodyBytesMax: Int
    public var enableCORS: Bool
    /// Threads serving HTTP connections (`service.max_workers`); 0 means one per core.
    public var workerThreads: Int
    /// Build commit reported by `GET /`; nil when unknown.
    public var commit: String?
    /// `service.api_key`, `alt_api_key`, `read_only_api_key`: none set, no credential is asked for.
    public var apiKeys: APIKeys
    /// `service.enable_tls`: HTTPS with this context (which may ask clients for certificates).
    public var tls: NIOSSLContext?

    public init(host: String, port: Int, requestBodyBytesMax: Int, enableCORS: Bool = true, workerThreads: Int = 0,
                commit: String? = nil, apiKeys: APIKeys = APIKeys(apiKey: nil), tls: NIOSSLContext? = nil) {
        self.host = host
        self.port = port
        self.requestBodyBytesMax = requestBodyBytesMax
        self.enableCORS = enableCORS
        self.workerThreads = workerThreads
        self.commit = commit
        self.apiKeys = apiKeys
        self.tls = tls
    }
}

/// Qdrant's REST API over Hummingbird.
public enum RESTServer {
    /// The HTTP application; it is a `Service` for the node's service group, and calls `onRunning`
    /// with the bound port once it accepts connections.
    public static func makeApplication(
        service: QuiverService,
        configuration: RESTConfiguration,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = makeRouter(service: service, configuration: configuration, logger: logger)
        // The group lives as long as the process; the application is the node's only HTTP server.
        let eventLoops = configuration.workerThreads > 0
            ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.workerThreads)
            : MultiThreadedEventLoopGroup.singleton
        return Application(
            router: router,
            server: LoopBoundHTTP1.builder(eventLoops, tls: configuration.tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "quiver"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            eventLoopGroupProvider: .shared(eventLoops),
            logger: logger
        )
    }

    static func makeRouter(service: QuiverService, configuration: RESTConfiguration, logger: Logger) -> Router<BasicRequestContext> {
        let metrics = RESTMetrics()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ObserveMiddleware(metrics: metrics, logger: logger))
        router.add(middleware: DeadlineMiddleware())
        if configuration.enableCORS {
            router.add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.contentType, .authorization, HTTPField.Name("api-key")!],
                                                  allowMethods: [.get, .post, .put, .patch, .delete, .options]))
        }
        if configuration.apiKeys.enabled {
            router.add(middleware: APIKeyMiddleware(service: service, keys: configuration.apiKeys))
        }
        let routes = Routes(service: service, configuration: configuration, metrics: metrics, startedAt: Date())
        routes.addServiceRoutes(to: router)
        routes.addCollectionRoutes(to: router)
        routes.addSnapshotRoutes(to: router)
        routes.addFullSnapshotRoutes(to: router)
        routes.addClusterRoutes(to: router)
        routes.addPointRoutes(to: router)
        routes.addShardRoutes(to: router)
        routes.addSearchRoutes(to: router)
        routes.addIndexRoutes(to: router)
        routes.addOptimizationRoutes(to: router)
        return router
    }
}

struct Routes: Sendable {
    let service: QuiverService
    let configuration: RESTConfiguration
    let metrics: RESTMetrics
    let startedAt: Date
    let nodeID = UUID().uuidString.lowercased()

    var bodyLimit: Int { configuration.requestBodyBytesMax }
}

/// Records every response in the metrics and logs it, except the hot status endpoints (as Qdrant).
/// A request's `timeout` query parameter (seconds) as the deadline of the calls it makes to other
/// peers. Invalid values are left to the route, which answers them with a 4xx.
struct DeadlineMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let raw = request.uri.queryParameters.get("timeout"), let seconds = Int(raw), seconds > 0 else {
            return try await next(request, context)
        }
        return try await RequestDeadline.$current.withValue(.now + .seconds(seconds)) { try await next(request, context) }
    }
}

/// Asks every request but the status endpoints for a key or token (`api-key`, or
/// `authorization: Bearer …`): refused, a 401 or 403 whose body is Qdrant's message as plain text;
/// accepted, the request runs with the access it grants (`Access.current`), which each operation
/// checks.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: QuiverService
    let keys: APIKeys
    static var openPaths: Set<String> { ["/", "/healthz", "/readyz", "/livez"] }
    private static var apiKeyHeader: HTTPField.Name { HTTPField.Name("api-key")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var path = Substring(request.uri.path)
        while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
        if Self.openPaths.contains(String(path)) { return try await next(request, context) }
        switch await service.authenticate(keys, apiKey: request.headers[Self.apiKeyHeader], authorization: request.headers[.authorization]) {
        case .success(let access):
            return try await Access.$current.withValue(access) { try await next(request, context) }
        case .failure(let refusal):
            return Response(status: refusal.httpStatus, body: ResponseBody(byteBuffer: ByteBuffer(string: refusal.description)))
        }
    }
}

/// Route patterns renamed for metrics so far (there are as many as routes).
private let renamedPatterns = Mutex<[String: String]>([:])

struct ObserveMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RESTMetrics
    let logger: Logger
    static var quietPaths: Set<String> { ["/", "/metrics", "/telemetry", "/healthz", "/readyz", "/livez"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: Int
        let response: Response
        do {
            response = try await next(request, context)
            status = response.status.code
        } catch let error as any HTTPResponseError {
            record(request, context, error.status.code, start)
            throw error
        }
        record(request, context, status, start)
        return response
    }

    /// A route pattern with Qdrant's names for its parameters, as its metrics and telemetry show it.
    static func qdrantPattern(_ pattern: String) -> String {
        if let known = renamedPatterns.withLock({ $0[pattern] }) { return known }
        let renamed = pattern.replacingOccurrences(of: "{name}", with: "{collection_name}")
            .replacingOccurrences(of: "{field}", with: "{field_name}")
            .replacingOccurrences(of: "{shard_id}", with: "{shard}")
        renamedPatterns.withLock { $0[pattern] = renamed }
        return renamed
    }

    private func record(_ request: Request, _ context: Context, _ status: Int, _ start: ContinuousClock.Instant) {
        let seconds = APIResponse.seconds(since: start)
        let endpoint = context.endpointPath.map(Self.qdrantPattern) ?? "unknown"
        metrics.record(endpoint: endpoint, method: request.method.rawValue, status: status, seconds: seconds)
        if !Self.quietPaths.contains(request.uri.path) {
            logger.info("\"\(request.method) \(request.uri)\" \(status) \(String(format: "%.6f", seconds))")
        }
    }
}
