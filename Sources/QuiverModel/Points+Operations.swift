public import QuiverJSON

/// Bodies of the vector and payload endpoints and of `points/batch`.
extension PointsJSON {
    /// Ids of a body that selects points by `points` (filters come with the filter language).
    static func selectedIDs(_ body: JSONObject, _ path: String) throws(Failure) -> [PointID] {
        if let filter = body["filter"], !filter.isNull {
            throw fail(fieldPath(path, "filter"), "selecting points by filter is not supported yet")
        }
        guard let points = body["points"], !points.isNull else { throw fail(path, "missing field `points`") }
        return try ids(points, fieldPath(path, "points"))
    }

    /// The required list of strings at `field` of a body.
    static func strings(_ value: JSONValue?, _ path: String, field: String) throws(Failure) -> [String] {
        guard let value else { throw fail(path, "missing field `\(field)`") }
        return try strings(array(value, fieldPath(path, field)), fieldPath(path, field))
    }

    /// `UpdateVectors`: `{"points": [{"id", "vector"}]}`.
    public static func updateVectors(_ value: JSONValue, _ path: String = "") throws(Failure) -> UpdateOperation {
        let body = try object(value, path)
        try rejectUnsupported(body, ["shard_key", "update_filter"])
        guard let pointsValue = body["points"] else { throw fail(path, "missing field `points`") }
        let list = try array(pointsValue, fieldPath(path, "points"))
        guard !list.isEmpty else { throw fail(fieldPath(path, "points"), "must contain at least one point") }
        var points: [PointStruct] = []
        for (i, element) in list.enumerated() {
            let p = "\(fieldPath(path, "points"))[\(i)]"
            let point = try object(element, p)
            guard let id = point["id"] else { throw fail(p, "missing field `id`") }
            guard let vector = point["vector"] else { throw fail(p, "missing field `vector`") }
            points.append(PointStruct(id: try pointID(id, "\(p).id"), vectors: try vectorStruct(vector, "\(p).vector")))
        }
        return .updateVectors(points)
    }

    /// `DeleteVectors`: `{"points": [...], "vector": ["name", ...]}`.
    public static func deleteVectors(_ value: JSONValue, _ path: String = "") throws(Failure) -> UpdateOperation {
        let body = try object(value, path)
        try rejectUnsupported(body, ["shard_key"])
        let names = try strings(body["vector"], path, field: "vector")
        guard !names.isEmpty else { throw fail(fieldPath(path, "vector"), "must name at least one vector") }
        return .deleteVectors(try selectedIDs(body, path), names: Array(Set(names)).sorted())
    }

    /// `SetPayload`, for both set (merge) and overwrite.
    public static func setPayload(_ value: JSONValue, overwrite: Bool, _ path: String = "") throws(Failure) -> UpdateOperation {
        let body = try object(value, path)
        try rejectUnsupported(body, ["shard_key"])
        guard let payloadValue = body["payload"] else { throw fail(path, "missing field `payload`") }
        let payload = try object(payloadValue, fieldPath(path, "payload"))
        let ids = try selectedIDs(body, path)
        var key: String?
        if let keyValue = body["key"], !keyValue.isNull {
            guard let k = keyValue.stringValue else { throw fail(fieldPath(path, "key"), "invalid type: \(keyValue.kindDescription), expected a string") }
            key = k
        }
        if overwrite {
            if key != nil { throw fail(fieldPath(path, "key"), "`key` is not supported when overwriting payload yet") }
            return .overwritePayload(ids, payload: payload)
        }
        return .setPayload(ids, payload: payload, key: key)
    }

    /// `DeletePayload`: `{"keys": [...], "points": [...]}`.
    public static func deletePayload(_ value: JSONValue, _ path: String = "") throws(Failure) -> UpdateOperation {
        let body = try object(value, path)
        try rejectUnsupported(body, ["shard_key"])
        return .deletePayload(try selectedIDs(body, path), keys: try strings(body["keys"], path, field: "keys"))
    }

    /// `PointsSelector` for clearing payload.
    public static func clearPayload(_ value: JSONValue, _ path: String = "") throws(Failure) -> UpdateOperation {
        let body = try object(value, path)
        try rejectUnsupported(body, ["shard_key"])
        return .clearPayload(try selectedIDs(body, path))
    }

    /// `UpdateOperations`: `{"operations": [{"upsert": …}, {"delete": …}, …]}`.
    public static func batch(_ value: JSONValue) throws(Failure) -> [UpdateOperation] {
        let body = try object(value, "")
        guard let list = body["operations"] else { throw fail("", "missing field `operations`") }
        var operations: [UpdateOperation] = []
        for (i, element) in try array(list, "operations").enumerated() {
            let path = "operations[\(i)]"
            let wrapper = try object(element, path)
            guard wrapper.count == 1, let kind = wrapper.keys.first, let inner = wrapper[kind] else {
                throw fail(path, "expected exactly one operation")
            }
            let innerPath = "\(path).\(kind)"
            switch kind {
            case "upsert": operations.append(.upsert(try insertOperations(inner, innerPath)))
            case "delete":
                let selector = try object(inner, innerPath)
                try rejectUnsupported(selector, ["shard_key"])
                operations.append(.delete(try selectedIDs(selector, innerPath)))
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
