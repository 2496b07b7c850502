public import QuiverJSON

/// Body of `POST /collections/{c}/points` (retrieve by ids).
public struct RetrieveRequest: Sendable, Equatable {
    public var ids: [PointID]
    public var withPayload: WithPayload
    public var withVector: WithVector
}

/// Body of `POST /collections/{c}/points/scroll`.
public struct ScrollRequest: Sendable, Equatable {
    public var offset: PointID?
    public var limit: Int?
    public var withPayload: WithPayload
    public var withVector: WithVector
    public var filter: Filter?
}

/// Bodies of the read endpoints; defaults are Qdrant's (payload yes, vectors no).
extension PointsJSON {
    public static func retrieveRequest(_ value: JSONValue) throws(Failure) -> RetrieveRequest {
        let body = try object(value, "")
        try rejectUnsupported(body, ["shard_key"])
        guard let ids = body["ids"] else { throw fail("", "missing field `ids`") }
        return RetrieveRequest(ids: try self.ids(ids, "ids"),
                               withPayload: try WithPayload(json: body["with_payload"], default: .all),
                               withVector: try WithVector(json: body["with_vector"], default: .none))
    }

    public static func scrollRequest(_ value: JSONValue) throws(Failure) -> ScrollRequest {
        let body = try object(value, "")
        try rejectUnsupported(body, ["order_by", "shard_key"])
        var request = ScrollRequest(offset: nil, limit: nil,
                                    withPayload: try WithPayload(json: body["with_payload"], default: .all),
                                    withVector: try WithVector(json: body["with_vector"], default: .none),
                                    filter: try filter(body["filter"], "filter"))
        if let offset = body["offset"], !offset.isNull { request.offset = try pointID(offset, "offset") }
        if let limit = body["limit"], !limit.isNull {
            guard case .int(let n) = limit else {
                throw fail("limit", "invalid type: \(limit.kindDescription), expected an unsigned integer")
            }
            request.limit = Int(n)
        }
        return request
    }

    /// `CountRequest`: its filter (counting is always exact).
    public static func countRequest(_ value: JSONValue) throws(Failure) -> Filter? {
        let body = try object(value, "")
        try rejectUnsupported(body, ["shard_key"])
        return try filter(body["filter"], "filter")
    }
}
