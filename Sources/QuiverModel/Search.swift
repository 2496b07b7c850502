public import QuiverJSON

/// What to search with: a vector, or the vector of a stored point.
public indirect enum QueryInput: Codable, Sendable, Equatable {
    case vector([Float])
    case sparse(SparseVector)
    case multi(MultiVector)
    case point(PointID)
    /// `{"order_by": …}`: points ordered by a payload value instead of by similarity.
    case orderBy(OrderBy)
    /// `{"fusion": …}` or `{"rrf": …}`: the results of the prefetches combined.
    case fusion(Fusion)
    /// `{"recommend": …}`: points like the positive examples and unlike the negative ones
    /// (each example a vector or a point id).
    case recommend(positive: [QueryInput], negative: [QueryInput], strategy: RecommendStrategy)
    /// `{"discover": …}`: points near `target` within the space the context pairs bound.
    case discover(target: QueryInput, context: [ContextPair])
    /// `{"context": …}`: points on the positive side of every pair.
    case context([ContextPair])
    /// `{"sample": "random"}`: points in random order (score 1), drawn with `seed` (0: the
    /// collection draws one).
    case sample(seed: UInt64)
    /// `{"formula": …}`: the prefetches' points scored by an expression.
    case formula(Formula)
    /// `{"relevance_feedback": …}` with the naive strategy: a × similarity to `target`, plus for
    /// each ordered pair of feedback items whose scores differ by c' > 0, c'^b × c × (similarity
    /// to the better example − similarity to the worse).
    case relevanceFeedback(target: QueryInput, feedback: [FeedbackItem], a: Float, b: Float, c: Float)
}

public enum RecommendStrategy: String, StringEnum {
    case averageVector = "average_vector"
    case bestScore = "best_score"
    case sumScores = "sum_scores"
}

/// An example and how relevant it was judged.
public struct FeedbackItem: Codable, Sendable, Equatable {
    public var example: QueryInput
    public var score: Float

    public init(example: QueryInput, score: Float) {
        self.example = example
        self.score = score
    }
}

/// A positive and a negative example.
public struct ContextPair: Codable, Sendable, Equatable {
    public var positive: QueryInput
    public var negative: QueryInput

    public init(positive: QueryInput, negative: QueryInput) {
        self.positive = positive
        self.negative = negative
    }
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
    /// `{"nearest": …, "mmr": …}`: the nearest candidates re-ranked for diversity.
    public var mmr: MMR?

    public init() {}
}

/// Maximal marginal relevance: from the `candidatesLimit` nearest points (the limit when nil),
/// each next pick maximises (1 − diversity) × its similarity to the query − diversity × its
/// largest similarity to the points already picked.
public struct MMR: Codable, Sendable, Equatable {
    public var diversity: Float?
    public var candidatesLimit: Int?

    public static let maxCandidates = 16_384
}

/// `SearchParams`: accepted and validated; exact scoring is what runs until the vector index exists.
public struct SearchParams: Codable, Sendable, Equatable {
    public var hnswEf: Int?
    public var exact = false
    public var indexedOnly = false
    /// `acorn`: `enable`, and `max_selectivity` as given (`acornMaxSelectivityDefault` otherwise).
    public var acornEnable = false
    public var acornMaxSelectivity: Double?
    /// Qdrant's default `acorn.max_selectivity`.
    public static let acornMaxSelectivityDefault = 0.4
    /// `quantization`: ignore the codes, rescore with the originals, oversample.
    public var quantizationIgnore = false
    public var quantizationRescore = true
    /// As the request gave it (strict mode checks only a given one); 1 otherwise.
    public var quantizationOversampling: Double?
    /// `idf: {"corpus": …}`: the points the `idf` modifier's statistics count (nil: all).
    public var idfCorpus: Filter?
}

/// One search result (`ScoredPoint`).
public struct ScoredPoint: Codable, Sendable, Equatable {
    public var id: PointID
    public var version: UInt64
    public var score: Float
    public var payload: JSONObject?
    public var vectors: [String: [Float]]?
    public var sparse: [String: SparseVector]?
    public var multi: [String: MultiVector]?
    public var orderValue: JSONValue?

    public init(id: PointID, version: UInt64, score: Float, payload: JSONObject?, vectors: [String: [Float]]?,
                sparse: [String: SparseVector]? = nil, multi: [String: MultiVector]? = nil) {
        self.id = id
        self.version = version
        self.score = score
        self.payload = payload
        self.vectors = vectors
        self.sparse = sparse
        self.multi = multi
    }

    public init(_ record: PointRecord, score: Float, version: UInt64) {
        self.init(id: record.id, version: version, score: score, payload: record.payload, vectors: record.vectors, sparse: record.sparse,
                  multi: record.multi)
        orderValue = record.orderValue
    }

    /// A score as the shortest decimal that reads back as the same Float.
    public static func scoreJSON(_ score: Float) -> JSONValue { .double(Double(score.description) ?? Double(score)) }

    public func json(unnamedVector: Bool) -> JSONValue {
        var object = JSONObject()
        object["id"] = id.json
        object["version"] = .uint(version)
        object["score"] = Self.scoreJSON(score)
        object["payload"] = payload.map(JSONValue.object) ?? .null
        object["vector"] = PointRecord.vectorJSON(vectors, sparse, multi, unnamedVector: unnamedVector)
        if let orderValue { object["order_value"] = orderValue }
        return .object(object)
    }

    /// The same JSON as ``json(unnamedVector:)``, written straight to `writer` (a search's
    /// answer is mostly these).
    public func write(to writer: inout JSONWriter, unnamedVector: Bool) {
        writer.appendASCII("{\"id\":")
        writer.write(id.json)
        writer.appendASCII(",\"version\":")
        writer.write(.uint(version))
        writer.appendASCII(",\"score\":")
        writer.write(Self.scoreJSON(score))
        writer.appendASCII(",\"payload\":")
        if let payload { writer.write(.object(payload)) } else { writer.appendASCII("null") }
        writer.appendASCII(",\"vector\":")
        writer.write(PointRecord.vectorJSON(vectors, sparse, multi, unnamedVector: unnamedVector))
        if let orderValue {
            writer.appendASCII(",\"order_value\":")
            writer.write(orderValue)
        }
        writer.appendASCII("}")
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
        if let raw = body["query"], !raw.isNull {
            request.query = try queryInput(raw, join(path, "query"))
            if case .object(let object) = raw, let mmr = object["mmr"], !mmr.isNull { request.mmr = try self.mmr(mmr, join(path, "query.mmr")) }
        }
        if let raw = body["using"], !raw.isNull {
            guard let name = raw.stringValue else { throw fail(join(path, "using"), "invalid type: \(raw.kindDescription), expected a string") }
            request.using = name
        }
        request.lookupFrom = try lookupLocation(body["lookup_from"], join(path, "lookup_from"))
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
        try batch(value, legacy ? searchRequest : queryRequest)
    }

    /// A batch body, `{"searches": [...]}`, each request read by `read`.
    public static func batch(_ value: JSONValue, _ read: (JSONValue, String) throws(Failure) -> SearchRequest) throws(Failure) -> [SearchRequest] {
        let body = try object(value, "")
        try allowOnly(body, ["searches"], "")
        guard let searches = body["searches"] else { throw fail("", "missing field `searches`") }
        var result: [SearchRequest] = []
        for (i, element) in try array(searches, "searches").enumerated() { result.append(try read(element, "searches[\(i)]")) }
        return result
    }

    /// `RecommendRequest` (legacy `POST …/points/recommend`): `positive`, `negative`, `strategy`,
    /// `using`, `lookup_from`; `limit` is required.
    public static func recommendRequest(_ value: JSONValue, _ path: String = "") throws(Failure) -> SearchRequest {
        let body = try object(value, path)
        try allowOnly(body, ["shard_key", "positive", "negative", "strategy", "filter", "params", "limit", "offset", "with_payload",
                             "with_vector", "score_threshold", "using", "lookup_from"], path)
        var query = JSONObject()
        for key in ["positive", "negative", "strategy"] { if let v = body[key] { query[key] = v } }
        return try legacy(body, query: ["recommend": .object(query)], path)
    }

    /// `DiscoverRequest` (legacy `POST …/points/discover`): `target` and `context` pairs (a
    /// context search without a target); `limit` is required.
    public static func discoverRequest(_ value: JSONValue, _ path: String = "") throws(Failure) -> SearchRequest {
        let body = try object(value, path)
        try allowOnly(body, ["shard_key", "target", "context", "filter", "params", "limit", "offset", "with_payload", "with_vector",
                             "using", "lookup_from"], path)
        let context = body["context"] ?? .null
        if let target = body["target"], !target.isNull {
            return try legacy(body, query: ["discover": ["target": target, "context": context]], path)
        }
        return try legacy(body, query: ["context": context], path)
    }

    private static func legacy(_ body: JSONObject, query: JSONValue, _ path: String) throws(Failure) -> SearchRequest {
        guard body["limit"].map({ !$0.isNull }) == true else { throw fail(path, "missing field `limit`") }
        var request = SearchRequest()
        request.query = try queryInput(query, path)
        if let raw = body["using"], !raw.isNull {
            guard let name = raw.stringValue else { throw fail(join(path, "using"), "invalid type: \(raw.kindDescription), expected a string") }
            request.using = name
        }
        request.lookupFrom = try lookupLocation(body["lookup_from"], join(path, "lookup_from"))
        try common(body, path, into: &request)
        return request
    }

    static func lookupLocation(_ value: JSONValue?, _ path: String) throws(Failure) -> LookupLocation? {
        guard let value, !value.isNull else { return nil }
        let lookup = try object(value, path)
        try allowOnly(lookup, ["collection", "vector", "shard_key"], path)
        guard let collection = lookup["collection"]?.stringValue else { throw fail(join(path, "collection"), "missing field `collection` (a string)") }
        return LookupLocation(collection: collection, vector: lookup["vector"]?.stringValue)
    }

    static func queryInput(_ value: JSONValue, _ path: String) throws(Failure) -> QueryInput {
        switch value {
        case .array(let elements):
            if case .array? = elements.first { return .multi(try multi(value, path, validationPath: path)) }
            return .vector(try dense(value, path))
        case .int, .uint, .string:
            return .point(try pointID(value, path))
        case .object(let object):
            if let nearest = object["nearest"] {
                try allowOnly(object, ["nearest", "mmr"], path)
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
            if let raw = object["recommend"] {
                try allowOnly(object, ["recommend"], path)
                let p = join(path, "recommend")
                let input = try self.object(raw, p)
                try allowOnly(input, ["positive", "negative", "strategy"], p)
                let positive = try examples(input["positive"], join(p, "positive"))
                let negative = try examples(input["negative"], join(p, "negative"))
                guard !positive.isEmpty || !negative.isEmpty else {
                    throw Failure(path: join(p, "positives, negatives"), message: "At least one positive or negative vector/id must be provided",
                                  isValidation: true)
                }
                var strategy = RecommendStrategy.averageVector
                if let rawStrategy = input["strategy"], !rawStrategy.isNull {
                    guard let name = rawStrategy.stringValue, let parsed = RecommendStrategy(rawValue: name) else {
                        throw fail(join(p, "strategy"), "unknown variant `\(rawStrategy.stringValue ?? rawStrategy.kindDescription)`, expected one of `average_vector`, `best_score`, `sum_scores`")
                    }
                    strategy = parsed
                }
                return .recommend(positive: positive, negative: negative, strategy: strategy)
            }
            if let raw = object["discover"] {
                try allowOnly(object, ["discover"], path)
                let p = join(path, "discover")
                let input = try self.object(raw, p)
                try allowOnly(input, ["target", "context"], p)
                guard let target = input["target"] else { throw fail(p, "missing field `target`") }
                return .discover(target: try example(target, join(p, "target")), context: try contextPairs(input["context"], join(p, "context")))
            }
            if let raw = object["context"] {
                try allowOnly(object, ["context"], path)
                return .context(try contextPairs(raw, join(path, "context")))
            }
            if let raw = object["sample"] {
                try allowOnly(object, ["sample"], path)
                guard raw.stringValue == "random" else {
                    throw fail(join(path, "sample"), "unknown variant `\(raw.stringValue ?? raw.kindDescription)`, expected `random`")
                }
                return .sample(seed: 0)
            }
            if object["formula"] != nil { return .formula(try formula(object, path)) }
            if let raw = object["relevance_feedback"] {
                try allowOnly(object, ["relevance_feedback"], path)
                return try relevanceFeedback(raw, join(path, "relevance_feedback"))
            }
            if isSparse(value) { return .sparse(try sparse(value, path)) }
            if isDocument(value) { return .sparse(try document(value, path, query: true)) }
            if object["image"] != nil || object["object"] != nil {
                throw fail(path, "inference of images and objects is not available on this server; documents with the `\(BM25.model)` model are")
            }
            throw fail(path, "expected a vector, a point id or `{\"nearest\": …}`")
        default:
            throw fail(path, "invalid type: \(value.kindDescription), expected a vector, a point id or a query object")
        }
    }

    /// `RelevanceFeedbackInput`: `target`, `feedback` items and the `naive` strategy's a, b, c.
    static func relevanceFeedback(_ value: JSONValue, _ path: String) throws(Failure) -> QueryInput {
        let body = try object(value, path)
        try allowOnly(body, ["target", "feedback", "strategy"], path)
        guard let target = body["target"] else { throw fail(path, "missing field `target`") }
        guard let rawFeedback = body["feedback"] else { throw fail(path, "missing field `feedback`") }
        guard let rawStrategy = body["strategy"] else { throw fail(path, "missing field `strategy`") }
        var feedback: [FeedbackItem] = []
        for (i, element) in try array(rawFeedback, join(path, "feedback")).enumerated() {
            let p = "\(join(path, "feedback"))[\(i)]"
            let item = try object(element, p)
            try allowOnly(item, ["example", "score"], p)
            guard let example = item["example"] else { throw fail(p, "missing field `example`") }
            guard let score = item["score"]?.doubleValue else { throw fail(p, "missing field `score` (a number)") }
            feedback.append(FeedbackItem(example: try self.example(example, join(p, "example")), score: Float(score)))
        }
        let strategy = try object(rawStrategy, join(path, "strategy"))
        try allowOnly(strategy, ["naive"], join(path, "strategy"))
        guard let rawNaive = strategy["naive"] else { throw fail(join(path, "strategy"), "expected `{\"naive\": {\"a\", \"b\", \"c\"}}`") }
        let p = join(path, "strategy.naive")
        let naive = try object(rawNaive, p)
        try allowOnly(naive, ["a", "b", "c"], p)
        var coefficients: [Float] = []
        for key in ["a", "b", "c"] {
            guard let number = naive[key]?.doubleValue else { throw fail(p, "missing field `\(key)` (a number)") }
            coefficients.append(Float(number))
        }
        guard coefficients[1] >= 0 else {
            throw Failure(path: join(p, "b"), message: "value \(coefficients[1]) invalid, must be 0.0 or larger", isValidation: true)
        }
        return .relevanceFeedback(target: try example(target, join(path, "target")), feedback: feedback,
                                  a: coefficients[0], b: coefficients[1], c: coefficients[2])
    }

    /// `Mmr`: `diversity` within 0…1 (default 0.5), `candidates_limit` at most 16384.
    static func mmr(_ value: JSONValue, _ path: String) throws(Failure) -> MMR {
        let body = try object(value, path)
        try allowOnly(body, ["diversity", "candidates_limit"], path)
        var result = MMR()
        if let raw = body["diversity"], !raw.isNull {
            guard let diversity = raw.doubleValue else { throw fail(join(path, "diversity"), "invalid type: \(raw.kindDescription), expected a number") }
            guard (0...1).contains(diversity) else {
                throw Failure(path: join(path, "diversity"), message: "value \(diversity) invalid, must be from 0.0 to 1.0", isValidation: true)
            }
            result.diversity = Float(diversity)
        }
        if let raw = body["candidates_limit"], !raw.isNull {
            let limit = try unsigned(raw, join(path, "candidates_limit"))
            guard limit <= MMR.maxCandidates else {
                throw Failure(path: join(path, "candidates_limit"), message: "value \(limit) invalid, must be \(MMR.maxCandidates) or smaller", isValidation: true)
            }
            result.candidatesLimit = limit
        }
        return result
    }

    /// An example of a recommend, discover or context query: a dense or sparse vector, or a point id.
    static func example(_ value: JSONValue, _ path: String) throws(Failure) -> QueryInput {
        switch value {
        case .array(let elements):
            if case .array? = elements.first { return .multi(try multi(value, path, validationPath: path)) }
            return .vector(try dense(value, path))
        case .int, .uint, .string:
            return .point(try pointID(value, path))
        case .object where isSparse(value):
            return .sparse(try sparse(value, path))
        case .object where isDocument(value):
            return .sparse(try document(value, path, query: true))
        default:
            throw fail(path, "invalid type: \(value.kindDescription), expected a vector, a sparse vector or a point id")
        }
    }

    static func examples(_ value: JSONValue?, _ path: String) throws(Failure) -> [QueryInput] {
        guard let value, !value.isNull else { return [] }
        var result: [QueryInput] = []
        for (i, element) in try array(value, path).enumerated() { result.append(try example(element, "\(path)[\(i)]")) }
        return result
    }

    /// `ContextInput`: one pair, a list of them, or null (no pairs).
    static func contextPairs(_ value: JSONValue?, _ path: String) throws(Failure) -> [ContextPair] {
        guard let value, !value.isNull else { return [] }
        func pair(_ raw: JSONValue, _ p: String) throws(Failure) -> ContextPair {
            let body = try object(raw, p)
            try allowOnly(body, ["positive", "negative"], p)
            guard let positive = body["positive"] else { throw fail(p, "missing field `positive`") }
            guard let negative = body["negative"] else { throw fail(p, "missing field `negative`") }
            return ContextPair(positive: try example(positive, join(p, "positive")), negative: try example(negative, join(p, "negative")))
        }
        if case .array(let list) = value {
            var result: [ContextPair] = []
            for (i, element) in list.enumerated() { result.append(try pair(element, "\(path)[\(i)]")) }
            return result
        }
        return [try pair(value, path)]
    }

    /// Fields both request kinds share.
    static func common(_ body: JSONObject, _ path: String, into request: inout SearchRequest) throws(Failure) {
        request.filter = try filter(body["filter"], join(path, "filter"))
        if let raw = body["params"], !raw.isNull {
            let p = join(path, "params")
            let params = try object(raw, p)
            try allowOnly(params, ["hnsw_ef", "exact", "quantization", "indexed_only", "acorn", "idf"], p)
            if let raw = params["idf"], !raw.isNull {
                switch raw {
                case .string("global"): break
                case .object(let idf):
                    try allowOnly(idf, ["corpus"], join(p, "idf"))
                    guard let corpus = idf["corpus"] else { throw fail(join(p, "idf"), "missing field `corpus`") }
                    request.params.idfCorpus = try filter(corpus, join(p, "idf.corpus"))
                default:
                    throw fail(join(p, "idf"), "expected `\"global\"` or `{\"corpus\": …}`")
                }
            }
            if let ef = params["hnsw_ef"], !ef.isNull { request.params.hnswEf = try unsigned(ef, join(p, "hnsw_ef")) }
            for (name, raw) in [("exact", params["exact"]), ("indexed_only", params["indexed_only"])] {
                guard let raw, !raw.isNull else { continue }
                guard case .bool(let flag) = raw else { throw fail(join(p, name), "invalid type: \(raw.kindDescription), expected a boolean") }
                if name == "exact" { request.params.exact = flag } else { request.params.indexedOnly = flag }
            }
            if let raw = params["acorn"], !raw.isNull {
                let ap = join(p, "acorn")
                let acorn = try object(raw, ap)
                try allowOnly(acorn, ["enable", "max_selectivity"], ap)
                if let raw = acorn["enable"], !raw.isNull {
                    guard case .bool(let flag) = raw else { throw fail(join(ap, "enable"), "invalid type: \(raw.kindDescription), expected a boolean") }
                    request.params.acornEnable = flag
                }
                if let raw = acorn["max_selectivity"], !raw.isNull {
                    guard let value = raw.doubleValue else { throw fail(join(ap, "max_selectivity"), "invalid type: \(raw.kindDescription), expected a number") }
                    guard (0...1).contains(value) else {
                        throw Failure(path: join(ap, "max_selectivity"), message: "value \(value) invalid, must be from 0.0 to 1.0", isValidation: true)
                    }
                    request.params.acornMaxSelectivity = value
                }
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
