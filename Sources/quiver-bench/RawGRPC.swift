import Foundation
import NIOCore
import NIOHPACK

/// A gRPC client for unary calls over one HTTP/2 connection, one call at a time, on a blocking
/// socket: the counterpart of `RawHTTP`, so that a load test through gRPC spends its CPU in the
/// server as one through REST does (grpc-swift's client costs more per call than the server).
/// It keeps HTTP/2's flow control in both directions and answers SETTINGS and PING.
final class RawGRPC {
    private let socket: BlockingSocket
    private let authority: String
    private var headerBlocks: [String: [UInt8]] = [:]
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    private var buffer: [UInt8] = []
    private var nextStream: UInt32 = 1
    /// What the server lets this client send: per stream (its SETTINGS) and on the connection.
    private var streamWindowInitial = 65_535
    private var connectionWindow = 65_535
    private var streamWindow = 0
    private var maxFrame = 16_384
    /// Response bytes read since the connection window was last topped up.
    private var unreturned = 0

    private static let window = 1 << 30

    struct Failure: Error, CustomStringConvertible {
        let status: String
        let message: String
        var description: String { "grpc-status \(status): \(message)" }
    }

    init(host: String, port: Int) throws {
        socket = try BlockingSocket(host: host, port: port)
        authority = "\(host):\(port)"
        var opening = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        // SETTINGS: no push, a large window for each response stream.
        opening += Self.frame(type: 0x4, flags: 0, stream: 0, payload: Self.setting(0x2, 0) + Self.setting(0x4, UInt32(Self.window)))
        opening += Self.windowUpdate(stream: 0, Self.window - 65_535)
        try socket.send(opening)
    }

    /// Calls `path` (`/qdrant.Points/Query`) with a serialized request; the response message's bytes.
    func call(_ path: String, _ message: [UInt8]) throws -> [UInt8] {
        let stream = nextStream
        nextStream += 2
        streamWindow = streamWindowInitial
        var out = [UInt8]()
        if unreturned > 0 {
            out += Self.windowUpdate(stream: 0, unreturned)
            unreturned = 0
        }
        out += Self.frame(type: 0x1, flags: 0x4, stream: stream, payload: try headerBlock(path))
        let body = [0] + Self.be32(UInt32(message.count)) + message
        var sent = 0
        while sent < body.count {
            while min(connectionWindow, streamWindow) <= 0 {
                try socket.send(out)
                out = []
                _ = try readFrame(stream: stream)
            }
            let n = min(body.count - sent, maxFrame, connectionWindow, streamWindow)
            let last = sent + n == body.count
            out += Self.frame(type: 0x0, flags: last ? 0x1 : 0, stream: stream, payload: Array(body[sent..<(sent + n)]))
            sent += n
            connectionWindow -= n
            streamWindow -= n
        }
        try socket.send(out)

        var data: [UInt8] = []
        var status: String?
        var statusMessage = ""
        while status == nil {
            guard let (type, payload) = try readFrame(stream: stream) else { continue }
            if type == 0x0 {
                data += payload
            } else {
                var headers = ByteBufferAllocator().buffer(bytes: payload)
                let decoded = try decoder.decodeHeaders(from: &headers)
                status = decoded.first(name: "grpc-status")
                statusMessage = decoded.first(name: "grpc-message") ?? statusMessage
                if status == nil, let http = decoded.first(name: ":status"), http != "200" { throw Failure(status: "HTTP \(http)", message: "") }
            }
        }
        guard status == "0" else { throw Failure(status: status!, message: statusMessage.removingPercentEncoding ?? statusMessage) }
        guard data.count >= 5 else { throw Failure(status: "0", message: "no response message") }
        return Array(data[5...])
    }

    /// The request headers for `path`, encoded once: literals that leave HPACK's dynamic table
    /// alone, so the same bytes serve every call.
    private func headerBlock(_ path: String) throws -> [UInt8] {
        if let block = headerBlocks[path] { return block }
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        try encoder.beginEncoding(allocator: ByteBufferAllocator())
        for (name, value) in [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
                              ("content-type", "application/grpc"), ("te", "trailers")] {
            try encoder.appendNonIndexed(header: name, value: value)
        }
        let block = Array(try encoder.endEncoding().readableBytesView)
        headerBlocks[path] = block
        return block
    }

    /// Reads one frame and handles the connection's own (SETTINGS, PING, WINDOW_UPDATE); answers
    /// `stream`'s DATA (its payload) and header blocks (HEADERS with its CONTINUATIONs joined).
    private func readFrame(stream: UInt32) throws -> (type: UInt8, payload: [UInt8])? {
        var (type, flags, id, payload) = try nextFrame()
        if type == 0x1 {
            if flags & 0x8 != 0 { payload = Array(payload.dropFirst(1).dropLast(Int(payload[0]))) }  // padded
            if flags & 0x20 != 0 { payload = Array(payload.dropFirst(5)) }  // priority
            var endHeaders = flags & 0x4 != 0
            while !endHeaders {
                let next = try nextFrame()
                guard next.type == 0x9 else { throw BenchError("HTTP/2: headers interrupted by frame type \(next.type)") }
                payload += next.payload
                endHeaders = next.flags & 0x4 != 0
            }
        }
        switch type {
        case 0x0:
            unreturned += payload.count
            if flags & 0x8 != 0, let pad = payload.first { payload = Array(payload.dropFirst(1).dropLast(Int(pad))) }
            return id == stream ? (type, payload) : nil
        case 0x1:
            return id == stream ? (type, payload) : nil
        case 0x3:
            throw BenchError("HTTP/2: stream \(id) reset, error \(Self.int(payload, 0))")
        case 0x4 where flags & 0x1 == 0:
            for i in stride(from: 0, to: payload.count - 5, by: 6) {
                let value = Self.int(payload, i + 2)
                switch UInt16(payload[i]) << 8 | UInt16(payload[i + 1]) {
                case 0x4:
                    streamWindow += Int(value) - streamWindowInitial
                    streamWindowInitial = Int(value)
                case 0x5: maxFrame = Int(value)
                default: break
                }
            }
            try socket.send(Self.frame(type: 0x4, flags: 0x1, stream: 0, payload: []))
        case 0x6 where flags & 0x1 == 0:
            try socket.send(Self.frame(type: 0x6, flags: 0x1, stream: 0, payload: payload))
        case 0x7:
            throw BenchError("HTTP/2: GOAWAY, error \(Self.int(payload, 4))")
        case 0x8:
            let increment = Int(Self.int(payload, 0) & 0x7FFF_FFFF)
            if id == 0 { connectionWindow += increment } else if id == stream { streamWindow += increment }
        default:
            break
        }
        return nil
    }

    private func nextFrame() throws -> (type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) {
        while buffer.count < 9 { try socket.receive(into: &buffer) }
        let length = Int(buffer[0]) << 16 | Int(buffer[1]) << 8 | Int(buffer[2])
        while buffer.count < 9 + length { try socket.receive(into: &buffer) }
        let frame = (buffer[3], buffer[4], Self.int(buffer, 5) & 0x7FFF_FFFF, Array(buffer[9..<(9 + length)]))
        buffer.removeFirst(9 + length)
        return frame
    }

    private static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        [UInt8(payload.count >> 16 & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF), type, flags] + be32(stream) + payload
    }

    private static func windowUpdate(stream: UInt32, _ increment: Int) -> [UInt8] {
        frame(type: 0x8, flags: 0, stream: stream, payload: be32(UInt32(increment)))
    }

    private static func setting(_ id: UInt16, _ value: UInt32) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF)] + be32(value)
    }

    private static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func int(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
}
