public import QuiverJSON

/// `PayloadSchemaType`.
public enum PayloadSchemaType: String, StringEnum {
    case keyword, integer, float, geo, text, bool, datetime, uuid
}

/// A payload index as created (`PayloadFieldSchema`): its type, and the parameters object when the
/// request gave one (kept as sent, so `payload_schema` reports it back).
public struct PayloadFieldSchema: Sendable, Equatable {
    public var type: PayloadSchemaType
    public var params: JSONObject?

    public init(type: PayloadSchemaType, params: JSONObject? = nil) {
        self.type = type
        self.params = params
    }

    /// As `field_schema` is written: the type name, or the parameters object.
    public var json: JSONValue { params.map(JSONValue.object) ?? .string(type.rawValue) }

    /// `PayloadIndexInfo` in collection info.
    public func info(points: Int) -> JSONValue {
        ["data_type": .string(type.rawValue), "params": params.map(JSONValue.object) ?? .null, "points": .int(Int64(points))]
    }

    /// What each type's parameters object may contain besides `type`.
    static let parameterNames: [PayloadSchemaType: Set<String>] = [
        .keyword: ["is_tenant", "on_disk", "memory", "enable_hnsw", "prefix"],
        .integer: ["lookup", "range", "is_principal", "on_disk", "memory", "enable_hnsw"],
        .float: ["is_principal", "on_disk", "memory", "enable_hnsw"],
        .geo: ["on_disk", "memory", "enable_hnsw"],
        .text: ["tokenizer", "min_token_len", "max_token_len", "lowercase", "ascii_folding", "phrase_matching", "stopwords",
                "stemmer", "on_disk", "memory", "enable_hnsw"],
        .bool: ["on_disk", "memory", "enable_hnsw"],
        .datetime: ["is_principal", "on_disk", "memory", "enable_hnsw"],
        .uuid: ["is_tenant", "on_disk", "memory", "enable_hnsw"],
    ]
}

/// `PUT /collections/{c}/index`.
public struct CreateFieldIndex: Sendable, Equatable {
    public var fieldName: String
    public var schema: PayloadFieldSchema
}

extension PointsJSON {
    /// A stored schema (`PayloadFieldSchema.json`).
    public static func fieldSchema(_ value: JSONValue, _ path: String) throws(Failure) -> PayloadFieldSchema {
        try createFieldIndex(["field_name": .string(path), "field_schema": value]).schema
    }

    public static func createFieldIndex(_ value: JSONValue) throws(Failure) -> CreateFieldIndex {
        let body = try object(value, "")
        try allowOnly(body, ["field_name", "field_schema"], "")
        guard let name = body["field_name"]?.stringValue else { throw fail("field_name", "missing field `field_name` (a string)") }
        guard !name.isEmpty else { throw fail("field_name", "must not be empty") }
        guard let raw = body["field_schema"], !raw.isNull else {
            throw fail("field_schema", "missing field `field_schema`: give the index type, e.g. \"keyword\"")
        }
        switch raw {
        case .string(let type):
            guard let type = PayloadSchemaType(rawValue: type) else { throw fail("field_schema", "unknown variant `\(type)`, expected one of \(PayloadSchemaType.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", "))") }
            return CreateFieldIndex(fieldName: name, schema: PayloadFieldSchema(type: type))
        case .object(let params):
            guard let typeName = params["type"]?.stringValue, let type = PayloadSchemaType(rawValue: typeName) else {
                throw fail("field_schema.type", "expected one of \(PayloadSchemaType.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", "))")
            }
            try allowOnly(params, (PayloadFieldSchema.parameterNames[type] ?? []).union(["type"]), "field_schema")
            for (key, value) in params where key != "type" {
                switch key {
                case "tokenizer":
                    guard let t = value.stringValue, ["prefix", "whitespace", "word", "multilingual"].contains(t) else {
                        throw fail("field_schema.tokenizer", "expected one of `prefix`, `whitespace`, `word`, `multilingual`")
                    }
                case "min_token_len", "max_token_len":
                    if !value.isNull { _ = try unsigned(value, "field_schema.\(key)") }
                case "stopwords", "stemmer", "memory":
                    break
                default:
                    if !value.isNull, case .bool = value {} else if !value.isNull {
                        throw fail("field_schema.\(key)", "invalid type: \(value.kindDescription), expected a boolean")
                    }
                }
            }
            if type == .text {
                do {
                    _ = try TextAnalyzer(params: params)
                } catch {
                    throw fail(error.path, error.message)
                }
            }
            return CreateFieldIndex(fieldName: name, schema: PayloadFieldSchema(type: type, params: params))
        default:
            throw fail("field_schema", "invalid type: \(raw.kindDescription), expected a type name or a parameters object")
        }
    }
}
