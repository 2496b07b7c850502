public import QuiverJSON

/// Body of `POST /collections/{c}/points` (retrieve by ids).
public struct RetrieveRequest: Codable, Sendable, Equatable {
    public var ids: [PointID]
    public var withPayload: WithPayload
    public var withVector: WithVector
    public var shardKey: ShardKeySelector?
}

/// Body of `POST /collections/{c}/points/scroll`.
public struct ScrollRequest: Codable, Sendable, Equatable {
    public var offset: PointID?
    public var limit: Int?
    public var withPayload: WithPayload
    public var withVector: WithVector
    public var filter: Filter?
    public var orderBy: OrderBy?
    public var shardKey: ShardKeySelector?
}

/// `order_by` of a scroll: points sorted by the values of a payload key (numbers, or datetimes as
/// microseconds), from `start_from` on.
public struct OrderBy: Codable, Sendable, Equatable {
    public var key: String
    public var descending = false
    public var startFrom: Double?

    /// The value a payload value sorts by: numbers as they are, datetime strings in microseconds.
    public static func orderValue(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .int, .uint, .double: value
        case .string(let s): Datetime.parse(s).map(JSONValue.int)
        default: nil
        }
    }
}

/// `FacetRequest`.
public struct FacetRequest: Codable, Sendable, Equatable {
    public static let limitDefault = 10

    public var key: String
    /// As the request gave it (strict mode checks only a given one); `limitDefault` otherwise.
    public var limit: Int?
    public var filter: Filter?
    public var exact = false
    public var shardKey: ShardKeySelector?
}

/// `CountRequest`. Counting is always exact; `exact` (default true) only matters to strict mode.
public struct CountRequest: Codable, Sendable, Equatable {
    public var filter: Filter?
    public var exact = true
    public var shardKey: ShardKeySelector?

    public init(filter: Filter? = nil, exact: Bool = true, shardKey: ShardKeySelector? = nil) {
        self.filter = filter
        self.exact = exact
        self.shardKey = shardKey
    }
}

/// Bodies of the read endpoints; defaults are Qdrant's (payload yes, vectors no).
extension PointsJSON {
    public static func retrieveRequest(_ value: JSONValue) throws(Failure) -> RetrieveRequest {
        let body = try object(value, "")
        guard let ids = body["ids"] else { throw fail("", "missing field `ids`") }
        return RetrieveRequest(ids: try self.ids(ids, "ids"),
                               withPayload: try WithPayload(json: body["with_payload"], default: .all),
                               withVector: try WithVector(json: body["with_vector"], default: .none),
                               shardKey: try shardKeySelector(body))
    }

    public static func scrollRequest(_ value: JSONValue) throws(Failure) -> ScrollRequest {
        let body = try object(value, "")
        var request = ScrollRequest(offset: nil, limit: nil,
                                    withPayload: try WithPayload(json: body["with_payload"], default: .all),
                                    withVector: try WithVector(json: body["with_vector"], default: .none),
                                    filter: try filter(body["filter"], "filter"), shardKey: try shardKeySelector(body))
        if let raw = body["order_by"], !raw.isNull { request.orderBy = try orderBy(raw, "order_by") }
        if let offset = body["offset"], !offset.isNull { request.offset = try pointID(offset, "offset") }
        if let limit = body["limit"], !limit.isNull { request.limit = try unsigned(limit, "limit") }
        return request
    }

    static func orderBy(_ value: JSONValue, _ path: String) throws(Failure) -> OrderBy {
        if let key = value.stringValue { return OrderBy(key: key) }
        let body = try object(value, path)
        try allowOnly(body, ["key", "direction", "start_from"], path)
        guard let key = body["key"]?.stringValue else { throw fail(join(path, "key"), "missing field `key` (a string)") }
        var orderBy = OrderBy(key: key)
        if let raw = body["direction"], !raw.isNull {
            guard let direction = raw.stringValue, ["asc", "desc"].contains(direction) else {
                throw fail(join(path, "direction"), "unknown variant, expected `asc` or `desc`")
            }
            orderBy.descending = direction == "desc"
        }
        if let raw = body["start_from"], !raw.isNull {
            guard let start = OrderBy.orderValue(raw)?.doubleValue else {
                throw fail(join(path, "start_from"), "expected a number or an RFC 3339 datetime")
            }
            orderBy.startFrom = start
        }
        return orderBy
    }

    public static func facetRequest(_ value: JSONValue) throws(Failure) -> FacetRequest {
        let body = try object(value, "")
        try allowOnly(body, ["shard_key", "key", "limit", "filter", "exact"], "")
        guard let key = body["key"]?.stringValue else { throw fail("key", "missing field `key` (a string)") }
        var request = FacetRequest(key: key)
        request.shardKey = try shardKeySelector(body)
        if let raw = body["limit"], !raw.isNull {
            let limit = try unsigned(raw, "limit")
            guard limit >= 1 else { throw fail("limit", "must be at least 1") }
            request.limit = limit
        }
        request.filter = try filter(body["filter"], "filter")
        if let raw = body["exact"], !raw.isNull {
            guard case .bool(let exact) = raw else { throw fail("exact", "invalid type: \(raw.kindDescription), expected a boolean") }
            request.exact = exact
        }
        return request
    }

    public static func countRequest(_ value: JSONValue) throws(Failure) -> CountRequest {
        let body = try object(value, "")
        try allowOnly(body, ["shard_key", "filter", "exact"], "")
        var exact = true
        if let raw = body["exact"], !raw.isNull {
            guard case .bool(let flag) = raw else { throw fail("exact", "invalid type: \(raw.kindDescription), expected a boolean") }
            exact = flag
        }
        return CountRequest(filter: try filter(body["filter"], "filter"), exact: exact, shardKey: try shardKeySelector(body))
    }
}
