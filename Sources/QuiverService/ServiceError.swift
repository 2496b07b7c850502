public import QuiverJSON
public import QuiverModel
public import Storage

/// Where a rejected part of a request was; Qdrant names it in the message.
public enum RequestPart: String, Sendable {
    case body = "JSON body"
    case path = "path parameters"
    case query = "query parameters"
}

/// Every error a handler can return. REST maps it to an HTTP status and Qdrant's error body in one
/// place (`RESTServer/ErrorMapping.swift`); gRPC will map it to a status code in one place too.
public enum ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    case storage(StorageError)
    /// Well-formed input that breaks a rule (422).
    case validation(ValidationErrors, RequestPart)
    /// Input that is not the expected shape: malformed JSON, wrong types, unknown enum values (400).
    case format(String, RequestPart)
    /// A request body over `service.max_request_size_mb` (413).
    case payloadTooLarge(limitBytes: Int)

    /// Our own failure (500).
    public static func internalError(_ message: String) -> ServiceError {
        .storage(.serviceError(message))
    }

    public var description: String {
        switch self {
        case .storage(let error): error.description
        case .validation(let errors, let part): "Validation error in \(part.rawValue): \(errors.rendered)"
        case .format(let message, let part): "Format error in \(part.rawValue): \(message)"
        case .payloadTooLarge(let limit): "Payload too large: the request body is larger than the limit of \(limit) bytes (service.max_request_size_mb)"
        }
    }
}

extension ServiceError {
    /// Runs a body reader, turning its errors into format errors of the JSON body, or validation
    /// errors for values that break a rule. `request` names the body as Qdrant's validation does
    /// for requests it nests (`scroll_request`, `count_request`, `search_request`, `internal`).
    /// REST bodies and gRPC messages (as the REST bodies they correspond to) are read through it.
    public static func reading<T>(request: String? = nil, _ body: () throws(JSONDecodingError) -> T) throws(ServiceError) -> T {
        let result = JSONValueDecoder.$integersAreUnsigned.withValue(true) { Result(catching: body) }
        do {
            return try result.get()
        } catch where error.isValidation {
            var errors = ValidationErrors()
            errors.add(request.map { "\($0).\(error.path)" } ?? error.path, error.message)
            throw .validation(errors, .body)
        } catch {
            throw .format(error.description, .body)
        }
    }

    /// A Codable request type read from a body (a format error when it does not fit).
    public static func decoding<T: Decodable>(_ type: T.Type, from body: JSONValue) throws(ServiceError) -> T {
        let decoded = JSONValueDecoder.$integersAreUnsigned.withValue(true) {
            Result { () throws(JSONDecodingError) in try JSONValueDecoder().decode(T.self, from: body) }
        }
        switch decoded {
        case .success(let value): return value
        case .failure(let error): throw .format(error.description, .body)
        }
    }
}
