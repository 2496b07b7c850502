public import QuiverJSON

/// Bodies of the vector and payload endpoints and of `points/batch`.
extension PointsJSON {
    /// The points a body selects: `points` (ids) or `filter`, not both.
    static func selection(_ body: JSONObject, _ path: String) throws(Failure) -> ([PointID], Filter?) {
        let points = body["points"].flatMap { $0.isNull ? nil : $0 }
        let filter = try self.filter(body["filter"], fieldPath(path, "filter"))
        switch (points, filter) {
        case (let points?, nil): return (try ids(points, fieldPath(path, "points")), nil)
        case (nil, let filter?): return ([], filter)
        case (nil, nil): throw fail(path, "missing field `points` or `filter`")
        case (_?, _?): throw fail(path, "give either `points` or `filter`, not both")
        }
    }

    /// The required list of strings at `field` of a body.
    static func strings(_ value: JSONValue?, _ path: String, field: String) throws(Failure) -> [String] {
        guard let value else { throw fail(path, "missing field `\(field)`") }
        return try strings(array(value, fieldPath(path, field)), fieldPath(path, field))
    }

    /// `UpdateVectors`: `{"points": [{"id", "vector"}]}`.
    public static func updateVectors(_ value: JSONValue, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        guard let pointsValue = body["points"] else { throw fail(path, "missing field `points`") }
        let list = try array(pointsValue, fieldPath(path, "points"))
        guard !list.isEmpty else { throw fail(fieldPath(path, "points"), "must contain at least one point") }
        var points: [PointStruct] = []
        for (i, element) in list.enumerated() {
            let p = "\(fieldPath(path, "points"))[\(i)]"
            let point = try object(element, p)
            guard let id = point["id"] else { throw fail(p, "missing field `id`") }
            guard let vector = point["vector"] else { throw fail(p, "missing field `vector`") }
            points.append(PointStruct(id: try pointID(id, "\(p).id"), try vectorStruct(vector, "\(p).vector", update: true)))
        }
        let condition = try self.filter(body["update_filter"], fieldPath(path, "update_filter")).map { UpdateCondition(filter: $0) }
        return PointsUpdate(.updateVectors(points), condition: condition, shardKey: try shardKeySelector(body, path))
    }

    /// `DeleteVectors`: `{"points": [...], "vector": ["name", ...]}`.
    public static func deleteVectors(_ value: JSONValue, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        let names = try strings(body["vector"], path, field: "vector")
        guard !names.isEmpty else { throw fail(fieldPath(path, "vector"), "must name at least one vector") }
        let (ids, filter) = try selection(body, path)
        return PointsUpdate(.deleteVectors(ids, names: Array(Set(names)).sorted()), filter: filter, shardKey: try shardKeySelector(body, path))
    }

    /// `SetPayload`, for both set (merge) and overwrite.
    public static func setPayload(_ value: JSONValue, overwrite: Bool, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        guard let payloadValue = body["payload"] else { throw fail(path, "missing field `payload`") }
        let payload = try object(payloadValue, fieldPath(path, "payload"))
        let (ids, filter) = try selection(body, path)
        var key: String?
        if let keyValue = body["key"], !keyValue.isNull {
            guard let k = keyValue.stringValue else { throw fail(fieldPath(path, "key"), "invalid type: \(keyValue.kindDescription), expected a string") }
            key = k
        }
        if overwrite {
            if key != nil { throw fail(fieldPath(path, "key"), "`key` is not supported when overwriting payload yet") }
            return PointsUpdate(.overwritePayload(ids, payload: payload), filter: filter, shardKey: try shardKeySelector(body, path))
        }
        return PointsUpdate(.setPayload(ids, payload: payload, key: key), filter: filter, shardKey: try shardKeySelector(body, path))
    }

    /// `DeletePayload`: `{"keys": [...], "points": [...]}`.
    public static func deletePayload(_ value: JSONValue, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        let keys = try strings(body["keys"], path, field: "keys")
        let (ids, filter) = try selection(body, path)
        return PointsUpdate(.deletePayload(ids, keys: keys), filter: filter, shardKey: try shardKeySelector(body, path))
    }

    /// `PointsSelector` for clearing payload.
    public static func clearPayload(_ value: JSONValue, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        let (ids, filter) = try selection(body, path)
        return PointsUpdate(.clearPayload(ids), filter: filter, shardKey: try shardKeySelector(body, path))
    }

    /// `PointsSelector` for deleting points.
    public static func deletePoints(_ value: JSONValue, _ path: String = "") throws(Failure) -> PointsUpdate {
        let body = try object(value, path)
        let (ids, filter) = try selection(body, path)
        return PointsUpdate(.delete(ids), filter: filter, shardKey: try shardKeySelector(body, path))
    }

    /// `UpdateOperations`: `{"operations": [{"upsert": …}, {"delete": …}, …]}`.
    public static func batch(_ value: JSONValue) throws(Failure) -> [PointsUpdate] {
        let body = try object(value, "")
        guard let list = body["operations"] else { throw fail("", "missing field `operations`") }
        var operations: [PointsUpdate] = []
        for (i, element) in try array(list, "operations").enumerated() {
            let path = "operations[\(i)]"
            let wrapper = try object(element, path)
            guard wrapper.count == 1, let kind = wrapper.keys.first, let inner = wrapper[kind] else {
                throw fail(path, "expected exactly one operation")
            }
            let innerPath = "\(path).\(kind)"
            switch kind {
            case "upsert": operations.append(try upsert(inner, innerPath))
            case "delete": operations.append(try deletePoints(inner, innerPath))
            case "set_payload": operations.append(try setPayload(inner, overwrite: false, innerPath))
            case "overwrite_payload": operations.append(try setPayload(inner, overwrite: true, innerPath))
            case "delete_payload": operations.append(try deletePayload(inner, innerPath))
            case "clear_payload": operations.append(try clearPayload(inner, innerPath))
            case "update_vectors": operations.append(try updateVectors(inner, innerPath))
            case "delete_vectors": operations.append(try deleteVectors(inner, innerPath))
            default:
                throw fail(path, "unknown operation `\(kind)`, expected one of `upsert`, `delete`, `set_payload`, `overwrite_payload`, `delete_payload`, `clear_payload`, `update_vectors`, `delete_vectors`")
            }
        }
        return operations
    }
}

/// An update as a request names it: the operation, and a filter when it selects its points by one
/// (then the operation's own id list is empty, and each shard fills it with the points matching the
/// filter when it applies the update).
public struct PointsUpdate: Sendable, Equatable {
    public var operation: UpdateOperation
    public var filter: Filter?
    /// `update_mode` / `update_filter` of an upsert or vector update.
    public var condition: UpdateCondition?
    /// The shard keys whose shards the update goes to (custom sharding).
    public var shardKey: ShardKeySelector?

    public init(_ operation: UpdateOperation, filter: Filter? = nil, condition: UpdateCondition? = nil, shardKey: ShardKeySelector? = nil) {
        self.operation = operation
        self.filter = filter
        self.condition = condition
        self.shardKey = shardKey
    }
}

/// `update_mode` of an upsert.
public enum UpdateMode: String, Codable, Sendable, Equatable {
    /// Insert new points, replace existing ones (the default).
    case upsert
    /// Insert new points only; existing ones are left as they are.
    case insertOnly = "insert_only"
    /// Replace existing points only; new ids are skipped.
    case updateOnly = "update_only"
}

/// A conditional update (`update_mode`, `update_filter`): which of the points an upsert or a vector
/// update names it writes. Each shard decides against the points it holds when it applies the
/// update and logs only the points it writes, so replaying the WAL does not depend on the condition.
/// Points left out are skipped silently, as in Qdrant.
public struct UpdateCondition: Codable, Sendable, Equatable {
    public var mode: UpdateMode
    /// Existing points that do not match it are left unchanged; new points are not checked.
    public var filter: Filter?

    public init(mode: UpdateMode = .upsert, filter: Filter? = nil) {
        self.mode = mode
        self.filter = filter
    }

    /// Whether a point is written, given whether it exists now and (asked only for existing
    /// points) whether it matches `filter`. A vector update keeps missing points so that they are
    /// reported as missing.
    public func admits(exists: Bool, matches: () -> Bool) -> Bool {
        switch mode {
        case .insertOnly: !exists
        case .updateOnly: exists && (filter == nil || matches())
        case .upsert: !exists || filter == nil || matches()
        }
    }
}

extension UpdateOperation {
    /// The same operation on `ids` (operations that carry whole points keep theirs).
    public func selecting(_ ids: [PointID]) -> UpdateOperation {
        switch self {
        case .upsert, .updateVectors: self
        case .delete: .delete(ids)
        case .deleteVectors(_, let names): .deleteVectors(ids, names: names)
        case .setPayload(_, let payload, let key): .setPayload(ids, payload: payload, key: key)
        case .overwritePayload(_, let payload): .overwritePayload(ids, payload: payload)
        case .deletePayload(_, let keys): .deletePayload(ids, keys: keys)
        case .clearPayload: .clearPayload(ids)
        }
    }
}
