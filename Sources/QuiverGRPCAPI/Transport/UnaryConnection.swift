import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import QuiverService

/// One HTTP/2 connection of the gRPC server, fed the frames `NIOHTTP2Handler` parses (after
/// `NIOHTTP2ServerConnectionManagementHandler`, which answers for keep-alive and graceful shutdown).
///
/// Every public method is unary, so a call needs no channel, stream or writer of its own: the
/// handler gathers a stream's DATA frames until the client ends it, runs the method in a task on
/// this connection's event loop, and writes the headers, the message and the trailers in one flush.
/// Without a stream multiplexer the handler also keeps the inbound flow-control windows open,
/// topping each up from the window sizes NIO reports (which count the frames NIO drops, such as
/// those of a stream already refused).
final class UnaryConnection: ChannelInboundHandler, NIOHTTP2FrameDelegate {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    struct Settings {
        /// `service.max_request_size_mb`: the largest request message, after decompression.
        var messageBytesMax: Int
        /// Window sizes: a stream's is advertised in SETTINGS, the connection's opened on its first
        /// frame; each is topped up once half of it has been used.
        var streamWindow: Int
        var connectionWindow: Int
        var executor: CurrentLoopExecutor
        var apiKeys: APIKeys
    }

    /// The methods answered without a key, as by Qdrant.
    static let openMethods: Set<String> = ["/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"]

    private struct Call {
        var method: MethodTable.Method
        var encoding: MessageEncoding?
        /// What the call's credential grants, nil where none is asked for.
        var grant: Grant?
        var body: ByteBuffer?
        var task: Task<Void, Never>?
        let cancellation = ServerContext.RPCCancellationHandle()
    }

    private let methods: MethodTable
    private let settings: Settings
    private var calls: [HTTP2StreamID: Call] = [:]
    private var connectionWindowOpened = false
    private var lastStreamID = HTTP2StreamID.rootStream
    private var needsFlush = false
    private var context: ChannelHandlerContext?
    private var remotePeer = ""
    private var localPeer = ""

    init(methods: MethodTable, settings: Settings) {
        self.methods = methods
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        remotePeer = Self.describe(context.channel.remoteAddress)
        localPeer = Self.describe(context.channel.localAddress)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for call in calls.values {
            call.task?.cancel()
            call.cancellation.cancel()
        }
        calls.removeAll()
        context.fireChannelInactive()
    }

    /// HTTP/2 errors are answered by NIO: a stream error resets that stream only, and a connection
    /// error sends GOAWAY (`wroteFrame` closes the connection after it). Others (I/O) end it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !(error is any NIOHTTP2Error) { context.close(promise: nil) }
    }

    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .goAway(_, let code, _) = frame.payload, code != .noError, let context else { return }
        // After the GOAWAY has been flushed.
        context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !connectionWindowOpened {
            connectionWindowOpened = true
            let opening = settings.connectionWindow - 65_535
            if opening > 0 { write(context, HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: opening))) }
        }
        switch frame.payload {
        case .headers(let headers):
            if calls[frame.streamID] != nil || frame.streamID <= lastStreamID {
                // Trailers from the client end the request like an empty DATA frame.
                if headers.endStream { finish(context, frame.streamID) }
            } else {
                lastStreamID = frame.streamID
                open(context, frame.streamID, headers.headers, ended: headers.endStream)
            }
        case .data(let data):
            read(context, frame.streamID, data)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            // The client reset the stream (or it closed after the answer): stop its work.
            if let call = calls.removeValue(forKey: closed.streamID) {
                call.task?.cancel()
                call.cancellation.cancel()
            }
        case let window as NIOHTTP2WindowUpdatedEvent:
            topUp(context, window)
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Returns what the client has used of a window once half of it is gone: the connection's, and
    /// the stream's while its request is still arriving.
    private func topUp(_ context: ChannelHandlerContext, _ window: NIOHTTP2WindowUpdatedEvent) {
        guard let size = window.inboundWindowSize else { return }
        let target: Int
        if window.streamID == .rootStream {
            target = settings.connectionWindow
        } else if let call = calls[window.streamID], call.task == nil {
            target = settings.streamWindow
        } else {
            return
        }
        if size <= target / 2 {
            write(context, HTTP2Frame(streamID: window.streamID, payload: .windowUpdate(windowSizeIncrement: target - size)))
        }
    }

    // MARK: Requests

    private func open(_ context: ChannelHandlerContext, _ id: HTTP2StreamID, _ headers: HPACKHeaders, ended: Bool) {
        guard let type = headers.first(name: "content-type"),
              type == "application/grpc" || type.hasPrefix("application/grpc+") || type.hasPrefix("application/grpc;") else {
            // Not a gRPC request: HTTP's answer, as gRPC's protocol asks.
            write(context, HTTP2Frame(streamID: id, payload: .headers(.init(headers: [":status": "415"], endStream: true))))
            if !ended { write(context, HTTP2Frame(streamID: id, payload: .rstStream(.noError))) }
            return
        }
        let path = headers.first(name: ":path") ?? ""
        // A credential is checked before the request is read; a token's `value_exists` lookup
        // waits for the call to run.
        var grant: Grant?
        if settings.apiKeys.enabled && !Self.openMethods.contains(path) {
            switch settings.apiKeys.grant(apiKey: headers.first(name: "api-key"), authorization: headers.first(name: "authorization")) {
            case .success(let granted): grant = granted
            case .failure(let refusal): return fail(context, id, refusal.rpcError, reset: !ended)
            }
        }
        guard let method = methods[path] else {
            return fail(context, id, RPCError(code: .unimplemented, message: "Method not found: \(path)"), reset: !ended)
        }
        var encoding: MessageEncoding?
        if let name = headers.first(name: "grpc-encoding"), name != "identity" {
            guard let accepted = MessageEncoding(rawValue: name) else {
                var metadata = Metadata()
                metadata.addString(MessageEncoding.accepted, forKey: "grpc-accept-encoding")
                return fail(context, id, RPCError(code: .unimplemented, message: "Content is compressed with `\(name)` which isn't supported",
                                                  metadata: metadata), reset: !ended)
            }
            encoding = accepted
        }
        calls[id] = Call(method: method, encoding: encoding, grant: grant)
        if ended { finish(context, id) }
    }

    private func read(_ context: ChannelHandlerContext, _ id: HTTP2StreamID, _ data: HTTP2Frame.FramePayload.Data) {
        guard case .byteBuffer(var bytes) = data.data, calls[id] != nil, calls[id]?.task == nil else { return }
        // Gathered in place: a copy of the call held while appending would copy the whole body on
        // every frame.
        if calls[id]?.body == nil {
            calls[id]?.body = bytes
        } else {
            calls[id]?.body?.writeBuffer(&bytes)
        }
        // The length prefix: a message over the limit is refused before the rest of it is read,
        // bytes past the one message before they pile up, and room for the message made at once.
        let (received, length) = calls[id]?.body.map { ($0.readableBytes, $0.getInteger(at: $0.readerIndex + 1, as: UInt32.self)) } ?? (0, nil)
        if received >= 5, let length = length.map(Int.init) {
            let refusal: RPCError? = if length > settings.messageBytesMax {
                RPCError(code: .outOfRange, message: "Error, decoded message length too large: found \(length) bytes, "
                             + "the limit is: \(settings.messageBytesMax) bytes")
            } else if received > 5 + length {
                Self.secondMessage
            } else {
                nil
            }
            if let refusal {
                calls[id] = nil
                return fail(context, id, refusal, reset: !data.endStream)
            }
            calls[id]?.body?.reserveCapacity(minimumWritableBytes: 5 + length - received)
        }
        if data.endStream { finish(context, id) }
    }

    /// The client has sent everything: read the one message and start the method.
    private func finish(_ context: ChannelHandlerContext, _ id: HTTP2StreamID) {
        guard var call = calls[id], call.task == nil else { return }
        let message: [UInt8]
        do {
            message = try Self.message(call.body ?? ByteBuffer(), encoding: call.encoding, limit: settings.messageBytesMax)
        } catch {
            calls[id] = nil
            return fail(context, id, error)
        }
        call.body = nil
        let serverContext = ServerContext(descriptor: call.method.descriptor, remotePeer: remotePeer, localPeer: localPeer,
                                          cancellation: call.cancellation)
        let method = call.method
        let grant = call.grant
        let service = methods.service
        let connection = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        call.task = Task(executorPreference: settings.executor) {
            let result = await UnaryConnection.run(method, message, serverContext, grant: grant, service: service)
            if connection.eventLoop.inEventLoop {
                let (handler, context) = connection.value
                handler.answer(context, id, result)
            } else {
                connection.eventLoop.execute {
                    let (handler, context) = connection.value
                    handler.answer(context, id, result)
                }
            }
        }
        calls[id] = call
    }

    /// The method's answer, with the access the call's credential grants (when it needs one).
    private static func run(_ method: MethodTable.Method, _ message: [UInt8], _ context: ServerContext, grant: Grant?,
                            service: QuiverService) async -> Result<[UInt8], any Error> {
        var access = Access.manage
        if let grant {
            switch await service.access(for: grant) {
            case .success(let granted): access = granted
            case .failure(let refusal): return .failure(refusal.rpcError)
            }
        }
        do {
            return .success(try await Access.$current.withValue(access) { try await method.call(message, context) })
        } catch {
            return .failure(error)
        }
    }

    private static let secondMessage = RPCError(code: .internalError, message: "A unary call sent more than one message.")

    /// The request's one length-prefixed message, decompressed.
    private static func message(_ body: ByteBuffer, encoding: MessageEncoding?, limit: Int) throws(RPCError) -> [UInt8] {
        var body = body
        guard let flag = body.readInteger(as: UInt8.self), let length = body.readInteger(as: UInt32.self) else {
            throw RPCError(code: .internalError, message: "Missing request message.")
        }
        guard let bytes = body.readBytes(length: Int(length)) else {
            throw RPCError(code: .internalError, message: "The request ended inside a message.")
        }
        guard body.readableBytes == 0 else { throw secondMessage }
        guard flag == 1 else { return bytes }
        guard let encoding else {
            throw RPCError(code: .internalError, message: "A message is marked compressed but the call names no grpc-encoding.")
        }
        do throws(MessageEncoding.Failure) {
            return try encoding.decompress(bytes, limit: limit)
        } catch {
            switch error {
            case .tooLarge:
                throw RPCError(code: .resourceExhausted, message: "Error decompressing: size limit, of \(limit) bytes, exceeded while decompressing message")
            case .corrupt(let reason):
                throw RPCError(code: .internalError, message: "Error decompressing: \(reason)")
            }
        }
    }

    // MARK: Answers

    private func answer(_ context: ChannelHandlerContext, _ id: HTTP2StreamID, _ result: Result<[UInt8], any Error>) {
        guard calls.removeValue(forKey: id) != nil else { return }  // reset by the client meanwhile
        switch result {
        case .success(let message):
            var data = context.channel.allocator.buffer(capacity: 5 + message.count)
            data.writeInteger(UInt8(0))
            data.writeInteger(UInt32(message.count))
            data.writeBytes(message)
            write(context, HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.responseHeaders))))
            write(context, HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data)))))
            write(context, HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.okTrailers, endStream: true))))
        case .failure(let error):
            fail(context, id, error)
        }
        flushIfNeeded(context)
    }

    private static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    private static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    /// A trailers-only answer carrying the error's status; `reset` also stops a client still sending.
    private func fail(_ context: ChannelHandlerContext, _ id: HTTP2StreamID, _ error: any Error, reset: Bool = false) {
        let status: RPCError = switch error {
        case let error as RPCError: error
        case is CancellationError: RPCError(code: .cancelled, message: "The call was cancelled.")
        default: RPCError(code: .internalError, message: "\(error)")
        }
        var headers = Self.responseHeaders
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty { headers.add(name: "grpc-message", value: Self.percentEncoded(status.message, limit: 8192)) }
        for (key, value) in status.metadata {
            if case .string(let text) = value { headers.add(name: key, value: text) }
        }
        write(context, HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: true))))
        if reset { write(context, HTTP2Frame(streamID: id, payload: .rstStream(.noError))) }
    }

    /// `grpc-message`'s encoding: printable ASCII but `%` as is, every other byte as `%XX`; cut to
    /// at most `limit` bytes, so that the trailers fit in one frame whatever the client's frame size.
    static func percentEncoded(_ message: String, limit: Int) -> String {
        var encoded = ""
        var size = 0
        for byte in message.utf8 {
            let plain = byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%")
            size += plain ? 1 : 3
            if size > limit { break }
            if plain {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return encoded
    }

    // MARK: Writing

    private func write(_ context: ChannelHandlerContext, _ frame: HTTP2Frame) {
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    private static func describe(_ address: SocketAddress?) -> String {
        switch address {
        case .v4(let a)?: "ipv4:\(a.host):\(address?.port ?? 0)"
        case .v6(let a)?: "ipv6:[\(a.host)]:\(address?.port ?? 0)"
        case .unixDomainSocket?: "unix:\(address?.pathname ?? "")"
        case nil: "unknown"
        }
    }
}
