import Foundation
import GRPCCore

/// Carries the bytes of one raft stream between a socketpair end (libraft holds the other end) and
/// a gRPC stream. A thread reads the socket (blocking reads, so no event loop is needed here); the
/// chunks arrive from gRPC are written to it. Only the reading thread closes the descriptor; the
/// other side calls `shutdown`, which wakes that thread.
final class StreamBridge: Sendable {
    let fd: Int32
    let chunks: AsyncStream<[UInt8]>

    init(fd: Int32) {
        self.fd = fd
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .unbounded)
        chunks = stream
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    continuation.yield(Array(buffer[0..<n]))
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            continuation.finish()
            close(fd)
        }
        thread.name = "raft-stream"
        thread.start()
    }

    /// Writes all of `bytes`; false once the socket is gone.
    func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Ends both directions; the reading thread then closes the descriptor.
    func shutdown() {
        _ = Foundation.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Pumps `incoming` into the socket, then shuts it down.
    func drain(_ incoming: RPCAsyncSequence<[UInt8], any Error>) async {
        do {
            for try await chunk in incoming where !write(chunk) { break }
        } catch {}
        shutdown()
    }
}
