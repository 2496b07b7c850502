public import QuiverJSON

/// A point to write: id, dense vectors by name (`""` is the unnamed vector), sparse vectors and
/// multivectors by name, payload.
public struct PointStruct: Sendable, Equatable {
    public var id: PointID
    public var vectors: [String: [Float]]
    public var sparse: [String: SparseVector]
    public var multi: [String: MultiVector]
    public var payload: JSONObject?

    public init(id: PointID, vectors: [String: [Float]], sparse: [String: SparseVector] = [:], multi: [String: MultiVector] = [:],
                payload: JSONObject? = nil) {
        self.id = id
        self.vectors = vectors
        self.sparse = sparse
        self.multi = multi
        self.payload = payload
    }

    public init(id: PointID, _ vectors: NamedVectors, payload: JSONObject? = nil) {
        self.init(id: id, vectors: vectors.dense, sparse: vectors.sparse, multi: vectors.multi, payload: payload)
    }
}

/// The vectors of one point, by kind.
public struct NamedVectors: Sendable, Equatable {
    public var dense: [String: [Float]] = [:]
    public var sparse: [String: SparseVector] = [:]
    public var multi: [String: MultiVector] = [:]

    public init(dense: [String: [Float]] = [:], sparse: [String: SparseVector] = [:], multi: [String: MultiVector] = [:]) {
        self.dense = dense
        self.sparse = sparse
        self.multi = multi
    }
}

/// A change to a shard's points, and the shard's WAL record. Applying one is idempotent: a point
/// changes only when the operation's sequence number is above the point's version.
public enum UpdateOperation: Sendable, Equatable {
    case upsert([PointStruct])
    case delete([PointID])
    /// Replaces the named vectors given, keeping the point's other vectors and payload.
    case updateVectors([PointStruct])
    case deleteVectors([PointID], names: [String])
    /// Merges `payload` into each point's payload, or into the object at `key` (a dotted path).
    case setPayload([PointID], payload: JSONObject, key: String?)
    case overwritePayload([PointID], payload: JSONObject)
    /// Removes keys (dotted paths; `a[].b` reaches into every element of array `a`).
    case deletePayload([PointID], keys: [String])
    case clearPayload([PointID])

    /// Every point the operation names.
    public var ids: [PointID] {
        switch self {
        case .upsert(let points), .updateVectors(let points): points.map(\.id)
        case .delete(let ids), .deleteVectors(let ids, _), .setPayload(let ids, _, _), .overwritePayload(let ids, _),
             .deletePayload(let ids, _), .clearPayload(let ids): ids
        }
    }

    /// Operations on points that must exist (as in Qdrant, a missing point is an error).
    public var requiresExistingPoints: Bool {
        switch self {
        case .upsert, .delete: false
        case .updateVectors, .deleteVectors, .setPayload, .overwritePayload, .deletePayload, .clearPayload: true
        }
    }

    /// The same operation restricted to the points `keep` selects.
    public func restricted(to keep: (PointID) -> Bool) -> UpdateOperation {
        switch self {
        case .upsert(let points): .upsert(points.filter { keep($0.id) })
        case .updateVectors(let points): .updateVectors(points.filter { keep($0.id) })
        case .delete(let ids): .delete(ids.filter(keep))
        case .deleteVectors(let ids, let names): .deleteVectors(ids.filter(keep), names: names)
        case .setPayload(let ids, let payload, let key): .setPayload(ids.filter(keep), payload: payload, key: key)
        case .overwritePayload(let ids, let payload): .overwritePayload(ids.filter(keep), payload: payload)
        case .deletePayload(let ids, let keys): .deletePayload(ids.filter(keep), keys: keys)
        case .clearPayload(let ids): .clearPayload(ids.filter(keep))
        }
    }

    /// Splits the operation by the shard each point belongs to; shards with no point get nothing.
    /// Each id is hashed once, and an operation within one shard is passed on whole.
    public func partitioned(by shardOf: (PointID) -> Int) -> [Int: UpdateOperation] {
        var shardOfID: [PointID: Int] = [:]
        for id in ids where shardOfID[id] == nil { shardOfID[id] = shardOf(id) }
        let shards = Set(shardOfID.values)
        if shards.count == 1, let only = shards.first { return [only: self] }
        var result: [Int: UpdateOperation] = [:]
        for shard in shards { result[shard] = restricted { shardOfID[$0] == shard } }
        return result
    }
}

/// Reads request bodies of the points API from parsed JSON. Hand-written (not Codable) because
/// these are the hot paths: vectors go straight from the parsed numbers into `[Float]`.
public enum PointsJSON {
    public typealias Failure = JSONDecodingError

    static func fail(_ path: String, _ message: String) -> Failure {
        JSONDecodingError(path: path, message: message)
    }

    static func object(_ value: JSONValue, _ path: String) throws(Failure) -> JSONObject {
        guard case .object(let object) = value else {
            throw fail(path, "invalid type: \(value.kindDescription), expected a map")
        }
        return object
    }

    static func array(_ value: JSONValue, _ path: String) throws(Failure) -> [JSONValue] {
        guard case .array(let elements) = value else {
            throw fail(path, "invalid type: \(value.kindDescription), expected a sequence")
        }
        return elements
    }

    public static func pointID(_ value: JSONValue, _ path: String) throws(Failure) -> PointID {
        do {
            return try PointID(json: value)
        } catch {
            throw fail(path, error.message)
        }
    }

    /// A list of strings (keys, vector names).
    static func strings(_ values: [JSONValue], _ path: String) throws(Failure) -> [String] {
        var result: [String] = []
        for (i, value) in values.enumerated() {
            guard let s = value.stringValue else {
                throw fail("\(path)[\(i)]", "invalid type: \(value.kindDescription), expected a string")
            }
            result.append(s)
        }
        return result
    }

    public static func ids(_ value: JSONValue, _ path: String) throws(Failure) -> [PointID] {
        var result: [PointID] = []
        for (i, element) in try array(value, path).enumerated() {
            result.append(try pointID(element, "\(path)[\(i)]"))
        }
        return result
    }

    /// A dense vector; NaN and infinity cannot appear (JSON has no way to write them).
    static func dense(_ value: JSONValue, _ path: String) throws(Failure) -> [Float] {
        let elements = try array(value, path)
        var vector = [Float]()
        vector.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            guard let number = element.doubleValue else {
                throw fail("\(path)[\(i)]", "invalid type: \(element.kindDescription), expected a number")
            }
            let float = Float(number)
            guard float.isFinite else { throw fail("\(path)[\(i)]", "number \(number) does not fit a 32-bit float") }
            vector.append(float)
        }
        return vector
    }

    /// An empty dense vector: a validation error (422) at the field Qdrant names.
    static func emptyVector(_ field: String) -> Failure {
        Failure(path: field, message: "dense vector must not be empty", isValidation: true)
    }

    /// `VectorStruct`: a dense vector, or a map of named vectors. An empty vector is reported at
    /// `<path>.vector` (`<path>.?.vector` for a named one), or for a vector update at `<path>`
    /// (`<point>.?.vector`), as Qdrant's validation names them.
    static func vectorStruct(_ value: JSONValue, _ path: String, update: Bool = false) throws(Failure) -> NamedVectors {
        let point = update && path.hasSuffix(".vector") ? String(path.dropLast(7)) : path
        switch value {
        case .array(let elements):
            if case .array? = elements.first {
                return NamedVectors(multi: [VectorsConfig.defaultVectorName: try multi(value, path, validationPath: update ? point : path)])
            }
            if elements.isEmpty { throw emptyVector(update ? path : "\(path).vector") }
            return NamedVectors(dense: [VectorsConfig.defaultVectorName: try dense(value, path)])
        case .object(let object):
            var result = NamedVectors()
            for (name, vector) in object {
                if isDocument(vector) {
                    result.sparse[name] = try document(vector, "\(path).\(name)", query: false)
                    continue
                }
                if case .object = vector {
                    // Validation names a named vector `?` (`points[0].vector.?.values`).
                    result.sparse[name] = try sparse(vector, "\(path).\(name)", validationPath: update ? "\(point).?" : "\(path).?")
                    continue
                }
                if isMulti(vector) {
                    result.multi[name] = try multi(vector, "\(path).\(name)", validationPath: update ? "\(point).?" : "\(path).?")
                    continue
                }
                if case .array(let elements) = vector, elements.isEmpty {
                    throw emptyVector(update ? "\(point).?.vector" : "\(path).?.vector")
                }
                result.dense[name] = try dense(vector, "\(path).\(name)")
            }
            return result
        default:
            throw fail(path, "invalid type: \(value.kindDescription), expected a vector or a map of named vectors")
        }
    }

    static func payload(_ value: JSONValue?, _ path: String) throws(Failure) -> JSONObject? {
        guard let value, !value.isNull else { return nil }
        return try object(value, path)
    }

    /// `PointInsertOperations` as an update, with its `shard_key`.
    public static func upsert(_ value: JSONValue, _ root: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, root)
        var condition: UpdateCondition?
        let filter = try self.filter(body["update_filter"], fieldPath(root, "update_filter"))
        var mode = UpdateMode.upsert
        if let raw = body["update_mode"], !raw.isNull {
            guard let text = raw.stringValue else {
                throw fail(fieldPath(root, "update_mode"), "invalid type: \(raw.kindDescription), expected one of `upsert`, `insert_only`, `update_only`")
            }
            guard let parsed = UpdateMode(rawValue: text) else {
                throw fail(fieldPath(root, "update_mode"), "unknown variant `\(text)`, expected one of `upsert`, `insert_only`, `update_only`")
            }
            mode = parsed
        }
        if filter != nil || mode != .upsert { condition = UpdateCondition(mode: mode, filter: filter) }
        return PointsUpdate(.upsert(try insertOperations(value, root)), condition: condition, shardKey: try shardKeySelector(body, root))
    }

    /// `PointInsertOperations`: `{"points": [...]}` or `{"batch": {"ids", "vectors", "payloads"}}`.
    public static func insertOperations(_ value: JSONValue, _ root: String = "") throws(Failure) -> [PointStruct] {
        let body = try object(value, root)
        if let points = body["points"] {
            var result: [PointStruct] = []
            for (i, element) in try array(points, fieldPath(root, "points")).enumerated() {
                let path = "\(fieldPath(root, "points"))[\(i)]"
                let point = try object(element, path)
                guard let id = point["id"] else { throw fail(path, "missing field `id`") }
                guard let vector = point["vector"] else { throw fail(path, "missing field `vector`") }
                result.append(PointStruct(id: try pointID(id, "\(path).id"), try vectorStruct(vector, "\(path).vector"),
                                          payload: try payload(point["payload"], "\(path).payload")))
            }
            return result
        }
        guard let batchValue = body["batch"] else {
            throw fail(root, "expected `points` or `batch`")
        }
        let batchPath = fieldPath(root, "batch")
        let batch = try object(batchValue, batchPath)
        guard let idsValue = batch["ids"] else { throw fail(batchPath, "missing field `ids`") }
        guard let vectorsValue = batch["vectors"] else { throw fail(batchPath, "missing field `vectors`") }
        let ids = try ids(idsValue, "\(batchPath).ids")
        var columns: [String: [[Float]]] = [:]
        var sparseColumns: [String: [SparseVector]] = [:]
        var multiColumns: [String: [MultiVector]] = [:]
        switch vectorsValue {
        case .array(let rows) where rows.first.map(isMulti) == true:
            multiColumns[VectorsConfig.defaultVectorName] = try rows.enumerated().map { (i, row) throws(Failure) in
                try multi(row, "\(batchPath).vectors[\(i)]", validationPath: "\(batchPath).vectors")
            }
        case .array(let rows):
            columns[VectorsConfig.defaultVectorName] = try rows.enumerated().map { (i, row) throws(Failure) in
                if case .array(let elements) = row, elements.isEmpty { throw emptyVector("\(batchPath).vector") }
                return try dense(row, "\(batchPath).vectors[\(i)]")
            }
        case .object(let named):
            for (name, rows) in named {
                let list = try array(rows, "\(batchPath).vectors.\(name)")
                if let first = list.first, isSparse(first) || isDocument(first) {
                    sparseColumns[name] = try list.enumerated().map { (i, row) throws(Failure) in
                        isDocument(row) ? try document(row, "\(batchPath).vectors.\(name)[\(i)]", query: false)
                            : try sparse(row, "\(batchPath).vectors.\(name)[\(i)]", validationPath: "\(batchPath).?")
                    }
                    continue
                }
                if let first = list.first, isMulti(first) {
                    multiColumns[name] = try list.enumerated().map { (i, row) throws(Failure) in
                        try multi(row, "\(batchPath).vectors.\(name)[\(i)]", validationPath: "\(batchPath).?")
                    }
                    continue
                }
                columns[name] = try list.enumerated().map { (i, row) throws(Failure) in
                    if case .array(let elements) = row, elements.isEmpty { throw emptyVector("\(batchPath).?.vector") }
                    return try dense(row, "\(batchPath).vectors.\(name)[\(i)]")
                }
            }
        default:
            throw fail("\(batchPath).vectors", "invalid type: \(vectorsValue.kindDescription), expected a list of vectors or a map of them")
        }
        let counts = columns.mapValues(\.count).merging(sparseColumns.mapValues(\.count), uniquingKeysWith: max)
            .merging(multiColumns.mapValues(\.count), uniquingKeysWith: max)
        for (name, count) in counts where count != ids.count {
            let field = name.isEmpty ? "\(batchPath).vectors" : "\(batchPath).vectors.\(name)"
            throw fail(field, "has \(count) vectors for \(ids.count) ids")
        }
        var payloads: [JSONObject?] = Array(repeating: nil, count: ids.count)
        if let payloadsValue = batch["payloads"], !payloadsValue.isNull {
            let list = try array(payloadsValue, "\(batchPath).payloads")
            guard list.count == ids.count else { throw fail("\(batchPath).payloads", "has \(list.count) payloads for \(ids.count) ids") }
            for (i, element) in list.enumerated() { payloads[i] = try payload(element, "\(batchPath).payloads[\(i)]") }
        }
        return ids.indices.map { i in
            PointStruct(id: ids[i], vectors: columns.mapValues { $0[i] }, sparse: sparseColumns.mapValues { $0[i] },
                        multi: multiColumns.mapValues { $0[i] }, payload: payloads[i])
        }
    }
}

/// Which payload fields to return (`with_payload`).
public enum WithPayload: Codable, Sendable, Equatable {
    case none
    case all
    case include([String])
    case exclude([String])

    public init(json: JSONValue?, default fallback: WithPayload) throws(JSONDecodingError) {
        guard let json, !json.isNull else {
            self = fallback
            return
        }
        switch json {
        case .bool(let b): self = b ? .all : .none
        case .array(let keys): self = .include(try PointsJSON.strings(keys, "with_payload"))
        case .object(let object):
            if let include = object["include"] {
                self = .include(try PointsJSON.strings(PointsJSON.array(include, "with_payload.include"), "with_payload.include"))
            } else if let exclude = object["exclude"] {
                self = .exclude(try PointsJSON.strings(PointsJSON.array(exclude, "with_payload.exclude"), "with_payload.exclude"))
            } else {
                throw JSONDecodingError(path: "with_payload", message: "expected `include` or `exclude`")
            }
        default:
            throw JSONDecodingError(path: "with_payload", message: "invalid type: \(json.kindDescription), expected a boolean, a list of keys or a selector")
        }
    }

    /// The payload as returned. Include keeps only the given paths (`a.b` gives `{"a":{"b":…}}`);
    /// exclude removes them.
    public func apply(_ payload: JSONObject?) -> JSONObject? {
        switch self {
        case .none: return nil
        case .all: return payload ?? JSONObject()
        case .include(let keys):
            var result = JSONObject()
            for key in keys { Self.project(payload ?? JSONObject(), key.split(separator: ".").map(String.init)[...], into: &result) }
            return result
        case .exclude(let keys):
            var result = payload ?? JSONObject()
            for key in keys { PayloadPath.delete(key, from: &result) }
            return result
        }
    }

    /// Copies the value at `path` of `source` into `result` at the same path. A path that runs
    /// into an array copies the whole array (more rather than less).
    static func project(_ source: JSONObject, _ path: ArraySlice<String>, into result: inout JSONObject) {
        guard let head = path.first else { return }
        let name = head.hasSuffix("[]") ? String(head.dropLast(2)) : head
        guard let value = source[name] else { return }
        guard path.count > 1, case .object(let inner) = value else {
            result[name] = value
            return
        }
        var child = result[name]?.objectValue ?? JSONObject()
        project(inner, path.dropFirst(), into: &child)
        result[name] = .object(child)
    }
}

/// Which vectors to return (`with_vector`).
public enum WithVector: Codable, Sendable, Equatable {
    case none
    case all
    case named([String])

    public init(json: JSONValue?, default fallback: WithVector) throws(JSONDecodingError) {
        guard let json, !json.isNull else {
            self = fallback
            return
        }
        switch json {
        case .bool(let b): self = b ? .all : .none
        case .array(let names): self = .named(try PointsJSON.strings(names, "with_vector"))
        default:
            throw JSONDecodingError(path: "with_vector", message: "invalid type: \(json.kindDescription), expected a boolean or a list of vector names")
        }
    }
}

extension WithVector {
    /// Whether vector `name` is asked for.
    public func includes(_ name: String) -> Bool {
        switch self {
        case .none: false
        case .all: true
        case .named(let names): names.contains(name)
        }
    }
}

/// One point as returned by retrieve and scroll (`Record`).
public struct PointRecord: Codable, Sendable, Equatable {
    public var id: PointID
    public var payload: JSONObject?
    public var vectors: [String: [Float]]?
    /// Sparse vectors asked for, by name (nil when `vectors` is nil).
    public var sparse: [String: SparseVector]?
    /// Multivectors asked for, by name (nil when `vectors` is nil).
    public var multi: [String: MultiVector]?
    /// The value a scroll with `order_by` sorted this point by.
    public var orderValue: JSONValue?
    /// The point's version (not part of `Record`; search results report it). Not compared by `==`:
    /// two reads of the same content are equal whatever operation wrote it last.
    public var version: UInt64?

    public static func == (a: PointRecord, b: PointRecord) -> Bool {
        a.id == b.id && a.payload == b.payload && a.vectors == b.vectors && (a.sparse ?? [:]) == (b.sparse ?? [:])
            && (a.multi ?? [:]) == (b.multi ?? [:]) && a.orderValue == b.orderValue
    }

    public init(id: PointID, payload: JSONObject?, vectors: [String: [Float]]?, sparse: [String: SparseVector]? = nil,
                multi: [String: MultiVector]? = nil) {
        self.id = id
        self.payload = payload
        self.vectors = vectors
        self.sparse = sparse
        self.multi = multi
    }

    /// `vector` is a bare list for the unnamed vector of a single-vector collection, a map otherwise.
    public func json(unnamedVector: Bool) -> JSONValue {
        var object = JSONObject()
        object["id"] = id.json
        object["payload"] = payload.map(JSONValue.object) ?? .null
        object["vector"] = Self.vectorJSON(vectors, sparse, multi, unnamedVector: unnamedVector)
        if let orderValue { object["order_value"] = orderValue }
        return .object(object)
    }

    /// A point's `vector` field: null without vectors, a bare list for the unnamed vector of a
    /// single-vector collection, a map by name otherwise.
    static func vectorJSON(_ vectors: [String: [Float]]?, _ sparse: [String: SparseVector]?, _ multi: [String: MultiVector]?,
                           unnamedVector: Bool) -> JSONValue {
        guard let vectors else { return .null }
        let others = (sparse?.count ?? 0) + (multi?.count ?? 0)
        if unnamedVector, let only = vectors[VectorsConfig.defaultVectorName], others == 0 { return floats(only) }
        if unnamedVector, vectors.isEmpty, sparse?.isEmpty ?? true, let multi, multi.count == 1, let only = multi[VectorsConfig.defaultVectorName] {
            return only.json
        }
        var named = vectors.mapValues(floats)
        for (name, vector) in sparse ?? [:] { named[name] = vector.json }
        for (name, vector) in multi ?? [:] { named[name] = vector.json }
        return .object(JSONObject(named.keys.sorted().map { ($0, named[$0]!) }))
    }

    /// Each float as the shortest decimal that reads back as the same Float (`0.1`, not the
    /// `0.10000000149011612` a widened Double would print).
    static func floats(_ vector: [Float]) -> JSONValue {
        .array(vector.map { .double(Double($0.description) ?? Double($0)) })
    }
}

public enum UpdateStatus: String, StringEnum {
    case acknowledged, completed
    case waitTimeout = "wait_timeout"
}

public struct UpdateResult: Codable, Sendable, Equatable {
    public var operationId: UInt64?
    public var status: UpdateStatus

    public init(operationId: UInt64?, status: UpdateStatus) {
        self.operationId = operationId
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case operationId = "operation_id"
        case status
    }
}
