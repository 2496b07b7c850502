import CZlib

/// The `grpc-encoding`s a request message may be compressed with.
enum MessageEncoding: String {
    case gzip
    case deflate

    static let accepted = "identity,gzip,deflate"

    enum Failure: Error {
        case tooLarge
        case corrupt(String)
    }

    /// The message `compressed` decompresses to, refused once it passes `limit` bytes.
    func decompress(_ compressed: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        // zlib checks that its stream stays at one address between calls.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // gzip framing for gzip, zlib framing for deflate (as gRPC's "deflate" is zlib's format).
        guard czlib_inflate_init(stream, self == .gzip ? 15 + 16 : 15) == Z_OK else { throw .corrupt("inflateInit failed") }
        defer { inflateEnd(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(4096, min(limit + 1, compressed.count * 4)))
        var input = compressed
        return try input.withUnsafeMutableBufferPointer { (input) throws(Failure) -> [UInt8] in
            stream.pointee.next_in = input.baseAddress
            stream.pointee.avail_in = UInt32(input.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { chunk in
                    stream.pointee.next_out = chunk.baseAddress
                    stream.pointee.avail_out = UInt32(chunk.count)
                    return inflate(stream, Z_NO_FLUSH)
                }
                output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.pointee.avail_out))])
                if output.count > limit { throw .tooLarge }
                switch status {
                case Z_STREAM_END: return output
                case Z_OK: if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { throw .corrupt("truncated stream") }
                case Z_BUF_ERROR: throw .corrupt("truncated stream")
                default: throw .corrupt(stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)")
                }
            }
        }
    }
}
