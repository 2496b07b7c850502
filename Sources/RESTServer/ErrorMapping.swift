import HTTPTypes
import QuiverService
import Storage

/// The one place where errors become HTTP statuses. Messages keep Qdrant's wording; statuses are
/// Qdrant's (`src/actix/helpers.rs` in Qdrant's source for the storage errors, 400 for bodies that
/// do not parse, 422 for bodies that parse but break a rule).
extension ServiceError {
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .storage(let error):
            switch error {
            case .badInput, .badRequest: .badRequest
            case .alreadyExists: .conflict
            case .notFound: .notFound
            case .serviceError: .internalServerError
            case .standaloneMode: .methodNotAllowed
            case .unavailable: .serviceUnavailable
            case .timeout: .requestTimeout
            case .rateLimited: .tooManyRequests
            case .forbidden: .forbidden
            case .insufficientStorage: .init(code: 507, reasonPhrase: "Insufficient Storage")
            }
        case .validation: .unprocessableContent
        case .format: .badRequest
        case .payloadTooLarge: .contentTooLarge
        }
    }
}

/// A refused credential: 401 or 403, as Qdrant's.
extension AuthRefusal {
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        }
    }
}
