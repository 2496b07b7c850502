import SwiftProtobuf
import GRPCCore
import QuiverModel
import QuiverService
import Storage

/// The one place where errors become gRPC statuses, with Qdrant's codes for its storage errors
/// (NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS, RESOURCE_EXHAUSTED with `retry-after`, ...) and the
/// same messages as the REST bodies.
extension ServiceError {
    var rpcError: RPCError {
        var metadata = Metadata()
        let code: RPCError.Code
        switch self {
        case .storage(let error):
            switch error {
            case .badInput, .badRequest: code = .invalidArgument
            case .alreadyExists: code = .alreadyExists
            case .notFound: code = .notFound
            case .serviceError: code = .internalError
            case .standaloneMode: code = .unimplemented
            case .unavailable: code = .unavailable
            case .timeout: code = .deadlineExceeded
            case .forbidden: code = .permissionDenied
            case .insufficientStorage:
                // Qdrant's marker that tells this apart from a rate limit.
                code = .resourceExhausted
                metadata.addString("1", forKey: "qdrant-insufficient-storage")
            case .rateLimited(_, let retryAfter):
                code = .resourceExhausted
                if let retryAfter { metadata.addString(String(retryAfter), forKey: "retry-after") }
            }
        case .validation, .format: code = .invalidArgument
        case .payloadTooLarge: code = .resourceExhausted
        }
        // A message is not a JSON body: Qdrant's gRPC errors say "body".
        let message = switch self {
        case .validation(let errors, .body): "Validation error in body: \(errors.rendered)"
        case .format(let text, .body): "Format error in body: \(text)"
        default: description
        }
        return RPCError(code: code, message: message, metadata: metadata)
    }
}

/// A refused credential: `UNAUTHENTICATED` for Qdrant's 401s, `PERMISSION_DENIED` for its 403s.
extension AuthRefusal {
    var rpcError: RPCError {
        switch self {
        case .unauthorized(let message): RPCError(code: .unauthenticated, message: message)
        case .forbidden(let message): RPCError(code: .permissionDenied, message: message)
        }
    }
}
