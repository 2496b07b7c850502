import Consensus
import DiskIO
import Foundation
import GRPCCore
import Logging
@testable import PeerTransport
import QuiverJSON
import QuiverModel
import Shard
import Storage
import Testing

/// The p2p layer's own pieces: the shard-update wire form, address and error translation, the raft
/// stream bridge, and the service answering a client over a real loopback socket.
@Suite struct ShardUpdateCodecTests {
    let operations: [UInt32: UpdateOperation] = [
        3: .upsert([PointStruct(id: .number(7), vectors: ["": [1, 2, 3, 4]], payload: JSONObject([("city", "Oslo")]))]),
        0: .deletePayload([.number(1), .uuid(5, 6)], keys: ["a[].b"]),
        9: .setPayload([.number(2)], payload: JSONObject([("n", 1)]), key: "nest[0]"),
    ]

    func filter() throws -> Filter {
        try #require(try PointsJSON.filter(try JSONParser.parse(Array(#"{"must":[{"key":"city","match":{"value":"Oslo"}}]}"#.utf8)), "filter"))
    }

    @Test func roundTripsEveryShardWithItsHeader() throws {
        let condition = UpdateCondition(mode: .updateOnly, filter: try filter())
        let bytes = try ShardUpdateCodec.encode(operations, filter: try filter(), condition: condition, collection: "books", wait: true)
        let (header, decoded) = try ShardUpdateCodec.decode(bytes)
        #expect(decoded == operations)
        #expect(header.collection == "books" && header.wait)
        #expect(header.shards == [0, 3, 9])
        #expect(header.filter == (try filter()))
        #expect(header.condition == condition)
    }

    @Test func everyTruncationIsBadInputNotACrash() throws {
        let bytes = try ShardUpdateCodec.encode(operations, filter: nil, condition: nil, collection: "books", wait: false)
        for length in 0..<bytes.count {
            do {
                let (header, decoded) = try ShardUpdateCodec.decode(Array(bytes[..<length]))
                Issue.record("a cut at \(length) of \(bytes.count) bytes decoded as \(header.shards) with \(decoded.count) operations")
            } catch {
                guard case .badInput = error else {
                    Issue.record("cut at \(length): \(error)")
                    continue
                }
            }
        }
    }

    @Test func aHeaderWhoseLengthsDoNotMatchItsShardsIsRefused() throws {
        let header = Array(#"{"collection":"c","wait":true,"shards":[1,2],"lengths":[0]}"#.utf8)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += header
        #expect(throws: StorageError.badInput("bad shard update header")) { try ShardUpdateCodec.decode(bytes) }
    }
}

@Suite struct PeerAddressAndErrorTests {
    @Test func callerAddressesBecomeURIsOnTheP2PPort() {
        #expect(PeerService.uri(fromRemotePeer: "ipv4:10.0.0.5:51234", port: 6335) == "http://10.0.0.5:6335")
        #expect(PeerService.uri(fromRemotePeer: "ipv6:[::1]:40000", port: 7000) == "http://[::1]:7000")
        #expect(PeerService.uri(fromRemotePeer: "unix:/tmp/socket", port: 6335) == nil)
        #expect(PeerService.uri(fromRemotePeer: "ipv4:nocolon", port: 6335) == nil)
        #expect(PeerService.uri(fromRemotePeer: "ipv6:[::1", port: 6335) == nil)
    }

    @Test func errorsKeepTheirKindAcrossTheWire() throws {
        let cases: [(StorageError, StorageError)] = [
            (.notFound("no such collection"), .notFound("no such collection")),
            (.alreadyExists("exists"), .alreadyExists("exists")),
            (.badInput("bad"), .badRequest("bad")),
            (.badRequest("bad"), .badRequest("bad")),
            (.unavailable("down"), .unavailable("peer p: down")),
            (.serviceError("boom"), .serviceError("peer p: boom")),
        ]
        for (sent, received) in cases {
            #expect(PeerErrors.storageError(PeerErrors.rpcError(sent), peer: "p") == received)
        }
        #expect(PeerErrors.rpcError(ConsensusError.notLeader(nil)).code == .unavailable)
        #expect(PeerErrors.storageError(RPCError(code: .deadlineExceeded, message: "late"), peer: "p") == .unavailable("peer p: late"))
        // A shard's failure in an update's answer keeps it too: a full disk is not a rate limit.
        var ack = UpdateAck()
        ack.failed = [1: .insufficientStorage("Disk usage is at 90%"), 2: .rateLimited("slow down", retryAfter: 1)]
        let bytes = try JSONValueEncoder().encodeBytes(ShardUpdateReply(ack))
        let received = try JSONValueDecoder().decode(ShardUpdateReply.self, from: bytes).ack(from: "p")
        #expect(received.failed[1] == .insufficientStorage("peer p: Disk usage is at 90%"))
        #expect(received.failed[2] != nil && received.failed[2] != .insufficientStorage("peer p: slow down"))
    }
}

@Suite struct StreamBridgeTests {
    @Test func carriesBytesBothWaysAndEndsWhenThePeerCloses() async throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let bridge = StreamBridge(fd: pair[1])
        let raftSide = pair[0]
        let sent = (0..<200_000).map { UInt8($0 % 251) }
        // What gRPC delivers reaches the raft side.
        #expect(bridge.write([9, 8, 7]))
        var buffer = [UInt8](repeating: 0, count: 3)
        #expect(read(raftSide, &buffer, 3) == 3)
        #expect(buffer == [9, 8, 7])
        let writer = Thread {
            var offset = 0
            while offset < sent.count {
                let n = sent.withUnsafeBytes { write(raftSide, $0.baseAddress! + offset, min(4096, $0.count - offset)) }
                if n <= 0 { break }
                offset += n
            }
            shutdown(raftSide, Int32(SHUT_WR))
        }
        // What the raft side writes comes out as chunks, in order, until it closes its end.
        writer.start()
        var received: [UInt8] = []
        for await chunk in bridge.chunks { received += chunk }
        #expect(received == sent)
        close(raftSide)
    }
}

/// One peer's p2p server (a single-voter cluster) on a free loopback port, and a client network.
@Suite struct PeerServiceTests {
    struct Envelope: Codable {
        var id: UInt64
        var operation: MetadataOperation
    }

    final class Node {
        let path = NSTemporaryDirectory() + "quiver-p2p-\(UUID().uuidString)"
        var engine: RaftEngine!
        var manager: ConsensusManager!
        var server: PeerServer!
        var network: PeerNetwork!
        var toc: TableOfContent!
        var serving: Task<Void, any Error>?
        var uri = ""

        func start() async throws {
            let raft = path + "/raft"
            try FileManager.default.createDirectory(atPath: raft, withIntermediateDirectories: true)
            network = PeerNetwork(peerId: 1, uri: "", timeouts: .init(call: .seconds(10), connect: .seconds(5)), logger: Logger(label: "test"))
            toc = TableOfContent(storagePath: path + "/storage", disk: PosixDisk(), logger: Logger(label: "test"))
            await toc.enableCluster(peerID: 1, network: network)
            try await toc.load()
            manager = try ConsensusManager(toc: toc, peerId: 1, disk: PosixDisk(), logger: Logger(label: "test"))
            var options = RaftEngine.Options()
            options.electionTimeoutMs = 1000
            options.heartbeatTimeoutMs = 100
            let network = network!
            engine = try RaftEngine(directory: raft, peerId: 1, address: "pending", machine: manager, options: options) { peer, address, fd in
                network.connectRaft(peer: peer, address: address, fd: fd)
            }
            manager.attach(engine: engine, peers: network)
            network.resolveAddresses { [engine] peer in engine?.status.member(peer)?.address }
            server = PeerServer(host: "127.0.0.1", port: 0, service: PeerService(engine: engine, manager: manager, network: network,
                                                                                 logger: Logger(label: "test")))
            let server = server!
            serving = Task { try await server.serve() }
            _ = try engine.start(.bootstrap)
            var port: Int?
            for _ in 0..<600 where port == nil {
                port = try await server.listeningPort()
                if port == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            uri = "http://127.0.0.1:\(try #require(port))"
            for _ in 0..<1200 where engine.status.role != .leader { try await Task.sleep(for: .milliseconds(50)) }
            try #require(engine.status.role == .leader)
        }

        func stop() async {
            network?.shutdown()
            server?.stop()
            _ = try? await serving?.value
            engine?.shutdown()
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    @Test func answersStatusProposalsCommitWaitsAndSnapshots() async throws {
        let node = Node()
        do {
            try await node.start()
            let client = PeerNetwork(peerId: 2, uri: "", timeouts: .init(call: .seconds(10), connect: .seconds(5)), logger: Logger(label: "client"))
            defer { client.shutdown() }
            let before = try await client.status(of: node.uri)
            #expect(before.term >= 1)

            let entry = try JSONValueEncoder().encodeBytes(Envelope(id: 42, operation: .setMetadataKey(key: "via", value: "p2p")))
            let index = try await client.forwardProposal(entry, leader: 1, address: node.uri)
            #expect(index > before.commit)
            #expect(try await client.waitCommit(index, on: node.uri, timeout: .seconds(30)))
            #expect(node.manager.metadata.keys["via"] == "p2p")
            #expect(try await client.status(of: node.uri).commit >= index)

            let snapshot = try await client.metadataSnapshot(from: node.uri)
            #expect(String(decoding: snapshot, as: UTF8.self).contains("\"via\""))
            #expect(client.sendFailures.isEmpty)
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    @Test func shardReadsAndWritesCrossTheWire() async throws {
        let node = Node()
        do {
            try await node.start()
            let create = try JSONValueDecoder().decode(CreateCollection.self, from: Array(#"{"vectors":{"size":4,"distance":"Dot"}}"#.utf8))
            let config = await node.toc.effectiveConfig(create, peers: 1)
            #expect(try await node.manager.propose(.createCollection(name: "books", config: config,
                                                                     shards: ShardPlacement.initial(config, peers: [1]))))
            let client = PeerNetwork(peerId: 2, uri: "", timeouts: .init(call: .seconds(10), connect: .seconds(5)), logger: Logger(label: "client"))
            defer { client.shutdown() }
            client.resolveAddresses { [uri = node.uri] peer in peer == 1 ? uri : nil }

            let points = (1...5).map { PointStruct(id: .number($0), vectors: ["": [Float($0), 0, 0, 1]], payload: JSONObject([("n", .int(Int64($0)))])) }
            let clock = ClockTag(peerID: 2, clockID: 0, tick: 3, token: 5)
            let ack = try await client.update([0: .upsert(points)], clocks: [0: clock], filter: nil, condition: nil, collection: "books",
                                              wait: true, on: 1)
            #expect(ack.operationID >= 1 && ack.rejected.isEmpty)
            // The clock tag travels too: an older tick of the same clock comes back rejected with the replica's tick.
            var stale = clock
            stale.tick = 2
            let rejected = try await client.update([0: .delete([.number(1)])], clocks: [0: stale], filter: nil, condition: nil,
                                                   collection: "books", wait: true, on: 1)
            #expect(rejected.rejected == [0: 3])
            guard case .count(let count) = try await client.read(.count(filter: nil), collection: "books", shards: [0], on: 1) else {
                Issue.record("count answered with another kind")
                return
            }
            #expect(count == 5)
            // A conditional update travels with its condition: insert_only leaves existing points alone.
            let changed = PointStruct(id: .number(1), vectors: ["": [9, 9, 9, 9]], payload: JSONObject([("n", 100)]))
            _ = try await client.update([0: .upsert([changed])], clocks: [:], filter: nil, condition: UpdateCondition(mode: .insertOnly, filter: nil),
                                        collection: "books", wait: true, on: 1)
            guard case .records(let records) = try await client.read(.retrieve(ids: [.number(1)], withPayload: .all, withVector: .none),
                                                                      collection: "books", shards: [0], on: 1) else {
                Issue.record("retrieve answered with another kind")
                return
            }
            #expect(records.first?.payload?["n"] == 1)

            // Errors keep their kind; an unknown peer is unavailable before any call.
            await #expect(throws: StorageError.self) { _ = try await client.read(.count(filter: nil), collection: "nope", shards: [0], on: 1) }
            do {
                _ = try await client.read(.count(filter: nil), collection: "nope", shards: [0], on: 1)
            } catch {
                guard case .notFound = error else { throw error }
            }
            do {
                _ = try await client.read(.count(filter: nil), collection: "books", shards: [0], on: 7)
                Issue.record("a read on an unknown peer succeeded")
            } catch {
                guard case .unavailable = error else { throw error }
            }
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    @Test func anUnreachablePeerIsUnavailableAndCounted() async throws {
        // A port that was free a moment ago and has no listener.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(probe)

        let client = PeerNetwork(peerId: 2, uri: "", timeouts: .init(call: .seconds(2), connect: .seconds(1)), logger: Logger(label: "client"))
        defer { client.shutdown() }
        let uri = "http://127.0.0.1:\(port)"
        do {
            _ = try await client.status(of: uri)
            Issue.record("status of a closed port succeeded")
        } catch {
            guard case .unavailable = error else { throw error }
        }
        #expect(client.sendFailures[uri]?.count ?? 0 >= 1)
    }
}
