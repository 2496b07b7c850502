public import QuiverJSON

/// `with_lookup`: for each group, the point of another collection whose id is the group's id.
public struct WithLookup: Sendable, Equatable {
    public var collection: String
    public var withPayload: WithPayload
    public var withVector: WithVector
}

/// A search whose results are grouped by a payload value (`query/groups`, `search/groups`,
/// `recommend/groups`): at most `limit` groups of at most `groupSize` hits each, groups in the
/// order of their best hit.
public struct GroupsRequest: Sendable {
    public var search: SearchRequest
    /// The payload path whose values (strings or integers; each element of an array) name the
    /// groups a point belongs to.
    public var groupBy: String
    public var groupSize: Int
    public var limit: Int
    public var withLookup: WithLookup?
}

/// One group: its id (the payload value), its hits, best first, and the looked-up record.
public struct PointGroup: Sendable {
    public var id: JSONValue
    public var hits: [ScoredPoint]
    public var lookup: PointRecord?

    public init(id: JSONValue, hits: [ScoredPoint], lookup: PointRecord? = nil) {
        self.id = id
        self.hits = hits
        self.lookup = lookup
    }

    /// The group ids of a payload: each value at `path` (each element of an array value) when
    /// all are strings or integers; none when the path is missing or any value is of another
    /// kind (Qdrant drops such a point from every group).
    public static func ids(of payload: JSONObject?, at path: String) -> [JSONValue] {
        guard let payload else { return [] }
        var result: [JSONValue] = []
        for value in PayloadPath.values(path, in: .object(payload)) {
            let elements: [JSONValue] = if case .array(let list) = value { list } else { [value] }
            for element in elements {
                let id: JSONValue
                switch element {
                case .string: id = element
                case .int: id = element
                case .uint(let n): id = n <= UInt64(Int64.max) ? .int(Int64(n)) : element
                default: return []
                }
                if !result.contains(id) { result.append(id) }
            }
        }
        return result
    }

    /// The point id a group id names in the lookup collection, if it can name one.
    public var pointID: PointID? {
        switch id {
        case .int(let n) where n >= 0: .number(UInt64(n))
        case .uint(let n): .number(n)
        case .string: try? PointID(json: id)
        default: nil
        }
    }
}

extension PointsJSON {
    /// `QueryGroupsRequest` (`POST …/points/query/groups`): a query with `group_by`,
    /// `group_size` (default 3), `limit` groups (default 10) and `with_lookup`.
    public static func queryGroupsRequest(_ value: JSONValue) throws(Failure) -> GroupsRequest {
        var body = try object(value, "")
        let (groupBy, groupSize, lookup) = try groupFields(&body, defaultSize: 3)
        let limit = try body["limit"].flatMap { $0.isNull ? nil : $0 }.map { raw throws(Failure) in try positive(raw, "limit") } ?? 10
        body["limit"] = nil
        return GroupsRequest(search: try queryRequest(.object(body)), groupBy: groupBy, groupSize: groupSize, limit: limit, withLookup: lookup)
    }

    /// The legacy `search/groups` and `recommend/groups`: `group_size` and `limit` required.
    public static func legacyGroupsRequest(_ value: JSONValue, _ read: (JSONValue, String) throws(Failure) -> SearchRequest) throws(Failure) -> GroupsRequest {
        var body = try object(value, "")
        guard body["group_size"].map({ !$0.isNull }) == true else { throw fail("", "missing field `group_size`") }
        guard let rawLimit = body["limit"], !rawLimit.isNull else { throw fail("", "missing field `limit`") }
        let limit = try positive(rawLimit, "limit")
        let (groupBy, groupSize, lookup) = try groupFields(&body, defaultSize: 1)
        return GroupsRequest(search: try read(.object(body), ""), groupBy: groupBy, groupSize: groupSize, limit: limit, withLookup: lookup)
    }

    /// Takes `group_by`, `group_size` and `with_lookup` out of `body`.
    static func groupFields(_ body: inout JSONObject, defaultSize: Int) throws(Failure) -> (String, Int, WithLookup?) {
        guard let rawGroupBy = body["group_by"] else { throw fail("", "missing field `group_by`") }
        guard let groupBy = rawGroupBy.stringValue else { throw fail("group_by", "invalid type: \(rawGroupBy.kindDescription), expected a string") }
        guard !groupBy.isEmpty else { throw Failure(path: "group_by", message: "must not be empty", isValidation: true) }
        let groupSize = try body["group_size"].flatMap { $0.isNull ? nil : $0 }.map { raw throws(Failure) in try positive(raw, "group_size") } ?? defaultSize
        var lookup: WithLookup?
        if let raw = body["with_lookup"], !raw.isNull {
            switch raw {
            case .string(let collection):
                lookup = WithLookup(collection: collection, withPayload: .all, withVector: .none)
            case .object(let object):
                try allowOnly(object, ["collection", "with_payload", "with_vector", "with_vectors"], "with_lookup")
                guard let collection = object["collection"]?.stringValue else { throw fail("with_lookup", "missing field `collection`") }
                do {
                    lookup = WithLookup(collection: collection, withPayload: try WithPayload(json: object["with_payload"], default: .all),
                                        withVector: try WithVector(json: object["with_vectors"] ?? object["with_vector"], default: .none))
                } catch {
                    throw fail("with_lookup", error.message)
                }
            default:
                throw fail("with_lookup", "invalid type: \(raw.kindDescription), expected a collection name or `{\"collection\": …}`")
            }
        }
        for key in ["group_by", "group_size", "with_lookup"] { body[key] = nil }
        return (groupBy, groupSize, lookup)
    }

    /// A count of at least 1: a smaller one is a validation error (422) as in Qdrant.
    static func positive(_ value: JSONValue, _ path: String) throws(Failure) -> Int {
        let n = try unsigned(value, path)
        guard n >= 1 else { throw Failure(path: path, message: "value 0 invalid, must be 1 or larger", isValidation: true) }
        return n
    }
}

/// `SearchMatrixRequest` (`search/matrix/pairs` and `search/matrix/offsets`): `sample` random
/// points with vector `using` (and passing `filter`), each with its `limit` nearest among the
/// others of the sample.
public struct MatrixRequest: Sendable {
    public var filter: Filter?
    public var sample = 10
    public var limit = 3
    public var using = VectorsConfig.defaultVectorName
    public var shardKey: ShardKeySelector?
}

extension PointsJSON {
    public static func matrixRequest(_ value: JSONValue) throws(Failure) -> MatrixRequest {
        let body = try object(value, "")
        try allowOnly(body, ["shard_key", "filter", "sample", "limit", "using"], "")
        var request = MatrixRequest()
        request.filter = try filter(body["filter"], "filter")
        request.shardKey = try shardKeySelector(body)
        if let raw = body["sample"], !raw.isNull {
            request.sample = try unsigned(raw, "sample")
            guard request.sample >= 2 else {
                throw Failure(path: "sample", message: "value \(request.sample) invalid, must be 2 or larger", isValidation: true)
            }
        }
        if let raw = body["limit"], !raw.isNull { request.limit = try positive(raw, "limit") }
        if let raw = body["using"], !raw.isNull {
            guard let name = raw.stringValue else { throw fail("using", "invalid type: \(raw.kindDescription), expected a string") }
            request.using = name
        }
        return request
    }
}
