import DiskIO
import Foundation
import GRPCCore
import Logging
import QuiverService
import Storage
import Testing
@testable import QuiverGRPCAPI

/// The unary transport's pieces: its method table, status messages, compressed messages, and the
/// server's start and stop.
struct TransportTests {
    private func withService(_ body: (QuiverService) async throws -> Void) async throws {
        let path = NSTemporaryDirectory() + "quiver-grpc-\(UUID().uuidString)"
        defer { try? PosixDisk().removeItem(path) }
        let toc = TableOfContent(storagePath: path, disk: PosixDisk(), logger: Logger(label: "test"))
        try await toc.load()
        try await body(try await QuiverService.standalone(toc: toc, disk: PosixDisk(), logger: Logger(label: "test")))
    }

    @Test func everyMethodOfEveryServiceIsServed() async throws {
        try await withService { service in
            let table = MethodTable(service: service, commit: nil)
            let descriptors = Qdrant_Qdrant.Method.descriptors + Qdrant_Collections.Method.descriptors + Qdrant_Points.Method.descriptors
                + Qdrant_Snapshots.Method.descriptors + Grpc_Health_V1_Health.Method.descriptors
            #expect(descriptors.count == 52)
            #expect(Set(table.methods.keys) == Set(descriptors.map { "/" + $0.fullyQualifiedMethod }))
            for descriptor in descriptors {
                #expect(table["/" + descriptor.fullyQualifiedMethod]?.descriptor == descriptor)
            }
        }
    }

    @Test func statusMessagesArePercentEncoded() {
        #expect(UnaryConnection.percentEncoded("Not found: Collection `c` doesn't exist!", limit: 100) == "Not found: Collection `c` doesn't exist!")
        #expect(UnaryConnection.percentEncoded("100% é\n", limit: 100) == "100%25 %C3%A9%0A")
        // Cut to the limit, never inside an escape.
        #expect(UnaryConnection.percentEncoded("ab€", limit: 7) == "ab%E2")
        #expect(UnaryConnection.percentEncoded(String(repeating: "x", count: 20_000), limit: 8192).utf8.count == 8192)
    }

    @Test func gzipAndDeflateMessagesDecompressWithinTheLimit() throws {
        let text = Array(String(repeating: "quiver ", count: 20).utf8)
        let gzip: [UInt8] = [31, 139, 8, 0, 129, 50, 17, 107, 2, 255, 43, 44, 205, 44, 75, 45, 82, 40, 28, 12, 20, 0, 180, 238, 234, 221, 140, 0, 0, 0]
        let deflate: [UInt8] = [120, 156, 43, 44, 205, 44, 75, 45, 82, 40, 28, 12, 20, 0, 36, 169, 54, 177]
        #expect(try MessageEncoding.gzip.decompress(gzip, limit: 140) == text)
        #expect(try MessageEncoding.deflate.decompress(deflate, limit: 1000) == text)
        #expect(throws: MessageEncoding.Failure.self) { try MessageEncoding.gzip.decompress(gzip, limit: 139) }
        #expect(throws: MessageEncoding.Failure.self) { try MessageEncoding.gzip.decompress(Array(gzip.prefix(20)), limit: 1000) }
        #expect(throws: MessageEncoding.Failure.self) { try MessageEncoding.deflate.decompress(gzip, limit: 1000) }
    }

    @Test func theServerStopsWhenAsked() async throws {
        try await withService { service in
            let server = try await UnaryServer.bind(service: service, configuration: .init(host: "127.0.0.1", port: 0, requestBytesMax: 1 << 20, commit: nil))
            let port = try #require(server.port)
            #expect(port > 0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                server.shutdown()
                try await group.waitForAll()
            }
            // The port is free again.
            let again = try await UnaryServer.bind(service: service, configuration: .init(host: "127.0.0.1", port: port, requestBytesMax: 1 << 20, commit: nil))
            again.shutdown()
            try await again.run()
        }
    }
}
