public import QuiverJSON

/// What to search with: a vector, or the vector of a stored point.
public enum QueryInput: Codable, Sendable, Equatable {
    case vector([Float])
    case sparse(SparseVector)
    case point(PointID)
    /// `{"order_by": …}`: points ordered by a payload value instead of by similarity.
    case orderBy(OrderBy)
    /// `{"fusion": …}` or `{"rrf": …}`: the results of the prefetches combined.
    case fusion(Fusion)
}

/// How a fusion query combines the lists of its prefetches.
public enum Fusion: Codable, Sendable, Equatable {
    /// Reciprocal rank fusion: each list adds 1 / ((rank + 1) / weight + k − 1) to a point's
    /// score (rank from 0; `k` 2 and every weight 1 unless given).
    case rrf(k: Int?, weights: [Float]?)
    /// Distribution-based score fusion: each list's scores mapped from mean ± 3 standard
    /// deviations to 0…1, then summed.
    case dbsf

    public static let defaultK = 2
}

/// `LookupLocation`: take query points' vectors from another collection.
public struct LookupLocation: Codable, Sendable, Equatable {
    public var collection: String
    public var vector: String?
}

/// A nearest-neighbour search, from `points/query` or the legacy `points/search`.
public struct SearchRequest: Codable, Sendable, Equatable {
    /// nil: no query; points come in id order (`points/query` without `query`).
    public var query: QueryInput?
    /// The vector name; "" is the unnamed vector.
    public var using: String = VectorsConfig.defaultVectorName
    public var filter: Filter?
    public var params = SearchParams()
    public var limit = 10
    public var offset = 0
    public var scoreThreshold: Float?
    public var withPayload: WithPayload = .none
    public var withVector: WithVector = .none
    public var lookupFrom: LookupLocation?
    public var shardKey: ShardKeySelector?
    /// Sub-queries run first; the query then ranks the points they found (or fuses their lists).
    /// A prefetch has no offset, payload or vectors of its own.
    public var prefetch: [SearchRequest] = []

    public init() {}
}

/// `SearchParams`: accepted and validated; exact scoring is what runs until the vector index exists.
public struct SearchParams: Codable, Sendable, Equatable {
    public var hnswEf: Int?
    public var exact = false
    public var indexedOnly = false
    /// `quantization`: ignore the codes, rescore with the originals, oversample.
    public var quantizationIgnore = false
    public var quantizationRescore = true
    /// As the request gave it (strict mode checks only a given one); 1 otherwise.
    public var quantizationOversampling: Double?
}

/// One search result (`ScoredPoint`).
public struct ScoredPoint: Codable, Sendable, Equatable {
    public var id: PointID
    public var version: UInt64
    public var score: Float
    public var payload: JSONObject?
    public var vectors: [String: [Float]]?
    public var sparse: [String: SparseVector]?
    public var orderValue: JSONValue?

    public init(id: PointID, version: UInt64, score: Float, payload: JSONObject?, vectors: [String: [Float]]?,
                sparse: [String: SparseVector]? = nil) {
        self.id = id
        self.version = version
        self.score = score
        self.payload = payload
        self.vectors = vectors
        self.sparse = sparse
    }

    public init(_ record: PointRecord, score: Float, version: UInt64) {
        self.init(id: record.id, version: version, score: score, payload: record.payload, vectors: record.vectors, sparse: record.sparse)
        orderValue = record.orderValue
    }

    public func json(unnamedVector: Bool) -> JSONValue {
        var object = JSONObject()
        object["id"] = id.json
        object["version"] = .uint(version)
        object["score"] = .double(Double(score.description) ?? Double(score))
        let record = PointRecord(id: id, payload: payload, vectors: vectors, sparse: sparse).json(unnamedVector: unnamedVector)
        object["payload"] = record["payload"]
        object["vector"] = record["vector"]
        if let orderValue { object["order_value"] = orderValue }
        return .object(object)
    }
}

extension PointsJSON {
    /// `QueryRequest` (`POST …/points/query`). Recommend, discover, context, formula and
    /// sampling queries are refused with a clear message.
    public static func queryRequest(_ value: JSONValue, _ path: String = "") throws(Failure) -> SearchRequest {
        let body = try object(value, path)
        try allowOnly(body, ["shard_key", "prefetch", "query", "using", "filter", "params", "score_threshold", "limit", "offset",
                             "with_vector", "with_payload", "lookup_from"], path)
        var request = try queryFields(body, path)
        try common(body, path, into: &request)
        return request
    }

    /// `Prefetch`: a query without offset, payload, vectors or shard key.
    static func prefetch(_ value: JSONValue, _ path: String) throws(Failure) -> SearchRequest {
        let body = try object(value, path)
        try allowOnly(body, ["prefetch", "query", "using", "filter", "params", "score_threshold", "limit", "lookup_from"], path)
        var request = try queryFields(body, path)
        try common(body, path, into: &request)
        return request
    }

    /// What a query and a prefetch share: `prefetch`, `query`, `using`, `lookup_from`.
    static func queryFields(_ body: JSONObject, _ path: String) throws(Failure) -> SearchRequest {
        var request = SearchRequest()
        if let raw = body["prefetch"], !raw.isNull {
            let p = join(path, "prefetch")
            if case .array(let list) = raw {
                for (i, element) in list.enumerated() { request.prefetch.append(try prefetch(element, "\(p)[\(i)]")) }
            } else {
                request.prefetch = [try prefetch(raw, p)]
            }
        }
        if let raw = body["query"], !raw.isNull { request.query = try queryInput(raw, join(path, "query")) }
        if let raw = body["using"], !raw.isNull {
            guard let name = raw.stringValue else { throw fail(join(path, "using"), "invalid type: \(raw.kindDescription), expected a string") }
            request.using = name
        }
        if let raw = body["lookup_from"], !raw.isNull {
            let p = join(path, "lookup_from")
            let lookup = try object(raw, p)
            try allowOnly(lookup, ["collection", "vector", "shard_key"], p)
            guard let collection = lookup["collection"]?.stringValue else { throw fail(join(p, "collection"), "missing field `collection` (a string)") }
            request.lookupFrom = LookupLocation(collection: collection, vector: lookup["vector"]?.stringValue)
        }
        return request
    }

    /// `SearchRequest` (legacy `POST …/points/search`): `vector` is a list or `{"name", "vector"}`;
    /// `limit` is required.
    public static func searchRequest(_ value: JSONValue, _ path: String = "") throws(Failure) -> SearchRequest {
        var body = try object(value, path)
        try allowOnly(body, ["shard_key", "vector", "filter", "params", "limit", "top", "offset", "with_payload", "with_vector", "score_threshold"], path)
        // `top` is the old name of `limit`, still sent by older clients and scripts.
        if let top = body["top"] {
            guard body["limit"] == nil else { throw fail(path, "duplicate field `limit`") }
            body["top"] = nil
            body["limit"] = top
        }
        var request = SearchRequest()
        guard let vector = body["vector"] else { throw fail(path, "missing field `vector`") }
        let p = join(path, "vector")
        if case .object(let named) = vector {
            try allowOnly(named, ["name", "vector"], p)
            guard let name = named["name"]?.stringValue, let values = named["vector"] else {
                throw fail(p, "expected a list of numbers or `{\"name\": …, \"vector\": […]}`")
            }
            request.using = name
            if case .object = values {
                request.query = .sparse(try sparse(values, join(p, "vector")))
            } else {
                request.query = .vector(try dense(values, join(p, "vector")))
            }
        } else {
            request.query = .vector(try dense(vector, p))
        }
        guard body["limit"].map({ !$0.isNull }) == true else { throw fail(path, "missing field `limit`") }
        try common(body, path, into: &request)
        return request
    }

    /// `{"searches": [...]}` of the batch endpoints.
    public static func batchRequests(_ value: JSONValue, legacy: Bool) throws(Failure) -> [SearchRequest] {
        let body = try object(value, "")
        try allowOnly(body, ["searches"], "")
        guard let searches = body["searches"] else { throw fail("", "missing field `searches`") }
        var result: [SearchRequest] = []
        for (i, element) in try array(searches, "searches").enumerated() {
            result.append(legacy ? try searchRequest(element, "searches[\(i)]") : try queryRequest(element, "searches[\(i)]"))
        }
        return result
    }

    static func queryInput(_ value: JSONValue, _ path: String) throws(Failure) -> QueryInput {
        switch value {
        case .array(let elements):
            if elements.first.map({ if case .array = $0 { true } else { false } }) == true {
                throw fail(path, "multivector queries are not supported yet")
            }
            return .vector(try dense(value, path))
        case .int, .uint, .string:
            return .point(try pointID(value, path))
        case .object(let object):
            if let nearest = object["nearest"] {
                try allowOnly(object, ["nearest", "mmr"], path)
                try rejectUnsupported(object, ["mmr"])
                return try queryInput(nearest, join(path, "nearest"))
            }
            if let orderBy = object["order_by"] {
                try allowOnly(object, ["order_by"], path)
                return .orderBy(try self.orderBy(orderBy, join(path, "order_by")))
            }
            if let fusion = object["fusion"] {
                try allowOnly(object, ["fusion"], path)
                switch fusion.stringValue {
                case "rrf"?: return .fusion(.rrf(k: nil, weights: nil))
                case "dbsf"?: return .fusion(.dbsf)
                default: throw fail(join(path, "fusion"), "unknown variant `\(fusion.stringValue ?? fusion.kindDescription)`, expected `rrf` or `dbsf`")
                }
            }
            if let rrf = object["rrf"] {
                try allowOnly(object, ["rrf"], path)
                let p = join(path, "rrf")
                let parameters = try self.object(rrf, p)
                try allowOnly(parameters, ["k", "weights"], p)
                var k: Int?
                if let raw = parameters["k"], !raw.isNull {
                    k = try unsigned(raw, join(p, "k"))
                    guard k! >= 1 else { throw Failure(path: join(p, "k"), message: "Validation error: range [{\"min\": Number(1)}]", isValidation: true) }
                }
                var weights: [Float]?
                if let raw = parameters["weights"], !raw.isNull { weights = try dense(raw, join(p, "weights")) }
                return .fusion(.rrf(k: k, weights: weights))
            }
            let known = ["recommend", "discover", "context", "formula", "sample", "relevance_feedback"]
            if let kind = object.keys.first(where: known.contains) {
                throw fail(join(path, kind), "`\(kind)` queries are not supported yet")
            }
            if isSparse(value) { return .sparse(try sparse(value, path)) }
            if object["text"] != nil || object["image"] != nil || object["object"] != nil {
                throw fail(path, "inference (documents, images, objects) is not supported")
            }
            throw fail(path, "expected a vector, a point id or `{\"nearest\": …}`")
        default:
            throw fail(path, "invalid type: \(value.kindDescription), expected a vector, a point id or a query object")
        }
    }

    /// Fields both request kinds share.
    static func common(_ body: JSONObject, _ path: String, into request: inout SearchRequest) throws(Failure) {
        request.filter = try filter(body["filter"], join(path, "filter"))
        if let raw = body["params"], !raw.isNull {
            let p = join(path, "params")
            let params = try object(raw, p)
            try allowOnly(params, ["hnsw_ef", "exact", "quantization", "indexed_only", "acorn"], p)
            if let ef = params["hnsw_ef"], !ef.isNull { request.params.hnswEf = try unsigned(ef, join(p, "hnsw_ef")) }
            for (name, raw) in [("exact", params["exact"]), ("indexed_only", params["indexed_only"])] {
                guard let raw, !raw.isNull else { continue }
                guard case .bool(let flag) = raw else { throw fail(join(p, name), "invalid type: \(raw.kindDescription), expected a boolean") }
                if name == "exact" { request.params.exact = flag } else { request.params.indexedOnly = flag }
            }
            if let q = params["quantization"], !q.isNull {
                let qp = join(p, "quantization")
                let quantization = try object(q, qp)
                try allowOnly(quantization, ["ignore", "rescore", "oversampling"], qp)
                for name in ["ignore", "rescore"] {
                    guard let raw = quantization[name], !raw.isNull else { continue }
                    guard case .bool(let flag) = raw else { throw fail(join(qp, name), "invalid type: \(raw.kindDescription), expected a boolean") }
                    if name == "ignore" { request.params.quantizationIgnore = flag } else { request.params.quantizationRescore = flag }
                }
                if let raw = quantization["oversampling"], !raw.isNull {
                    guard let value = raw.doubleValue else { throw fail(join(qp, "oversampling"), "invalid type: \(raw.kindDescription), expected a number") }
                    guard value >= 1 else { throw fail(join(qp, "oversampling"), "value \(value) invalid, must be 1.0 or larger") }
                    request.params.quantizationOversampling = value
                }
            }
        }
        if let raw = body["limit"], !raw.isNull {
            let limit = try unsigned(raw, join(path, "limit"))
            guard limit >= 1 else { throw fail(join(path, "limit"), "must be at least 1") }
            request.limit = limit
        }
        if let raw = body["offset"], !raw.isNull { request.offset = try unsigned(raw, join(path, "offset")) }
        if let raw = body["score_threshold"], !raw.isNull {
            guard let threshold = raw.doubleValue else { throw fail(join(path, "score_threshold"), "invalid type: \(raw.kindDescription), expected a number") }
            request.scoreThreshold = Float(threshold)
        }
        request.withPayload = try WithPayload(json: body["with_payload"], default: .none)
        request.withVector = try WithVector(json: body["with_vector"], default: .none)
        request.shardKey = try shardKeySelector(body, path)
    }
}
