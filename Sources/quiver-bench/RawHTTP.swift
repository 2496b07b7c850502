#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A keep-alive HTTP/1.1 client over one TCP connection, written on plain sockets so that a load
/// test spends its CPU in the server, not in the client (URLSession goes through libcurl).
/// Responses must carry `content-length`, as the servers measured here send it.
final class RawHTTP {
    private let socket: BlockingSocket
    private let host: String
    private var buffer: [UInt8] = []

    /// Connects to `url` (`http://host:port`, an IPv4 address or `localhost`).
    init(url: String) throws {
        guard let parsed = URL(string: url), let name = parsed.host else { throw BenchError("cannot read \(url)") }
        host = "\(name):\(parsed.port ?? 80)"
        socket = try BlockingSocket(host: name, port: parsed.port ?? 80)
    }

    /// Sends one request and reads its response: the status and the body.
    func call(_ method: String, _ path: String, body: [UInt8] = []) throws -> (status: Int, body: [UInt8]) {
        var request = Array("\(method) \(path) HTTP/1.1\r\nhost: \(host)\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\n\r\n".utf8)
        request += body
        try socket.send(request)
        var headerEnd = buffer.firstRange(of: [13, 10, 13, 10])?.lowerBound
        while headerEnd == nil {
            try socket.receive(into: &buffer)
            headerEnd = buffer.firstRange(of: [13, 10, 13, 10])?.lowerBound
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw BenchError("bad response: \(head.prefix(200))")
        }
        guard let lengthLine = lines.first(where: { $0.lowercased().hasPrefix("content-length:") }),
              let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
            throw BenchError("response without content-length: \(head.prefix(200))")
        }
        let start = headerEnd! + 4
        while buffer.count < start + length { try socket.receive(into: &buffer) }
        let responseBody = Array(buffer[start..<(start + length)])
        buffer.removeFirst(start + length)
        return (status, responseBody)
    }

    /// The number after the last `"time":` of a Qdrant-style response (the server's own seconds).
    static func serverSeconds(_ body: [UInt8]) -> Double? {
        let text = String(decoding: body.suffix(64), as: UTF8.self)
        guard let key = text.range(of: "\"time\":", options: .backwards) else { return nil }
        return Double(text[key.upperBound...].prefix { $0 != "}" && $0 != "," })
    }
}

/// A connected TCP socket with blocking calls, for the benchmark's clients.
final class BlockingSocket {
    private let fd: Int32
    private var chunk = [UInt8](repeating: 0, count: 65536)

    /// Connects to `host` (an IPv4 address or `localhost`) and `port`.
    init(host: String, port: Int) throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw BenchError("connect \(host):\(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A server that stops answering fails the run instead of hanging it.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send: errno \(errno)") }
            sent += n
        }
    }

    /// Appends what one `recv` returns to `buffer`.
    func receive(into buffer: inout [UInt8]) throws {
        var n = 0
        repeat {
            n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        } while n < 0 && errno == EINTR
        guard n > 0 else { throw BenchError(n == 0 ? "connection closed" : "recv: errno \(errno)") }
        buffer += chunk[..<n]
    }
}
