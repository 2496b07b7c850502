import SwiftProtobuf
import QuiverJSON
import QuiverModel

/// The `qdrant.Points` requests as the REST bodies of the same operations.
extension Inbound {
    static func point(_ point: Qdrant_PointStruct) -> JSONValue {
        object([("id", point.hasID ? json(point.id) : nil), ("vector", point.hasVectors ? json(point.vectors) : nil),
                ("payload", json(point.payload))])
    }

    static func shardKey(_ has: Bool, _ selector: Qdrant_ShardKeySelector) -> JSONValue? {
        has ? json(selector) : nil
    }

    static func updateMode(_ mode: Qdrant_UpdateMode) -> JSONValue {
        switch mode {
        case .upsert: "upsert"
        case .insertOnly: "insert_only"
        case .updateOnly: "update_only"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
    }

    /// `{"points": [...]}` or `{"filter": {...}}` plus the other pairs.
    static func selected(_ selector: Qdrant_PointsSelector?, _ pairs: [(String, JSONValue?)]) -> JSONValue {
        var object = JSONObject()
        if let selector, case .object(let chosen) = json(selector) { for (k, v) in chosen { object[k] = v } }
        for case (let key, let value?) in pairs { object[key] = value }
        return .object(object)
    }

    static func upsert(points: [Qdrant_PointStruct], shardKey: JSONValue?, updateFilter: Qdrant_Filter?, mode: Qdrant_UpdateMode?) -> JSONValue {
        object([("points", .array(points.map(point))), ("shard_key", shardKey), ("update_filter", updateFilter.map(json)),
                ("update_mode", mode.map(updateMode))])
    }

    static func upsert(_ r: Qdrant_UpsertPoints) -> JSONValue {
        upsert(points: r.points, shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector),
               updateFilter: r.hasUpdateFilter ? r.updateFilter : nil, mode: r.hasUpdateMode ? r.updateMode : nil)
    }

    static func pointVectors(_ points: [Qdrant_PointVectors], shardKey: JSONValue?, updateFilter: Qdrant_Filter?) -> JSONValue {
        object([("points", .array(points.map { p in object([("id", p.hasID ? json(p.id) : nil), ("vector", p.hasVectors ? json(p.vectors) : nil)]) })),
                ("shard_key", shardKey), ("update_filter", updateFilter.map(json))])
    }

    static func setPayload(_ payload: [String: Qdrant_Value], _ selector: Qdrant_PointsSelector?, key: String?, shardKey: JSONValue?) -> JSONValue {
        selected(selector, [("payload", json(payload)), ("key", key.map(JSONValue.string)), ("shard_key", shardKey)])
    }

    static func vectorNames(_ selector: Qdrant_VectorsSelector) -> JSONValue {
        .array(selector.names.map(JSONValue.string))
    }

    /// One operation of `UpdateBatch`, as an entry of the REST batch's `operations`.
    static func operation(_ op: Qdrant_PointsUpdateOperation) -> JSONValue {
        switch op.operation {
        case nil: return [:]
        case .upsert(let u):
            return ["upsert": upsert(points: u.points, shardKey: shardKey(u.hasShardKeySelector, u.shardKeySelector),
                                     updateFilter: u.hasUpdateFilter ? u.updateFilter : nil, mode: u.hasUpdateMode ? u.updateMode : nil)]
        case .deleteDeprecated(let s): return ["delete": selected(s, [])]
        case .deletePoints(let d): return ["delete": selected(d.points, [("shard_key", shardKey(d.hasShardKeySelector, d.shardKeySelector))])]
        case .setPayload(let s):
            return ["set_payload": setPayload(s.payload, s.hasPointsSelector ? s.pointsSelector : nil, key: s.hasKey ? s.key : nil,
                                              shardKey: shardKey(s.hasShardKeySelector, s.shardKeySelector))]
        case .overwritePayload(let s):
            return ["overwrite_payload": setPayload(s.payload, s.hasPointsSelector ? s.pointsSelector : nil, key: s.hasKey ? s.key : nil,
                                                    shardKey: shardKey(s.hasShardKeySelector, s.shardKeySelector))]
        case .deletePayload(let d):
            return ["delete_payload": selected(d.hasPointsSelector ? d.pointsSelector : nil,
                                               [("keys", .array(d.keys.map(JSONValue.string))), ("shard_key", shardKey(d.hasShardKeySelector, d.shardKeySelector))])]
        case .clearPayloadDeprecated_p(let s): return ["clear_payload": selected(s, [])]
        case .clearPayload_p(let c): return ["clear_payload": selected(c.points, [("shard_key", shardKey(c.hasShardKeySelector, c.shardKeySelector))])]
        case .updateVectors(let u):
            return ["update_vectors": pointVectors(u.points, shardKey: shardKey(u.hasShardKeySelector, u.shardKeySelector),
                                                   updateFilter: u.hasUpdateFilter ? u.updateFilter : nil)]
        case .deleteVectors(let d):
            return ["delete_vectors": selected(d.pointsSelector, [("vector", vectorNames(d.vectors)),
                                                                  ("shard_key", shardKey(d.hasShardKeySelector, d.shardKeySelector))])]
        }
    }

    // MARK: Payload indexes

    static func memory(_ memory: Qdrant_Memory) -> JSONValue? {
        switch memory {
        case .cold: "cold"
        case .cached: "cached"
        case .pinned: "pinned"
        case .unknown, .UNRECOGNIZED: nil
        }
    }

    static func fieldType(_ type: Qdrant_FieldType) -> JSONValue {
        switch type {
        case .keyword: "keyword"
        case .integer: "integer"
        case .float: "float"
        case .geo: "geo"
        case .text: "text"
        case .bool: "bool"
        case .datetime: "datetime"
        case .uuid: "uuid"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
    }

    static func tokenizer(_ type: Qdrant_TokenizerType) -> JSONValue? {
        switch type {
        case .prefix: "prefix"
        case .whitespace: "whitespace"
        case .word: "word"
        case .multilingual: "multilingual"
        case .unknown, .UNRECOGNIZED: nil
        }
    }

    static func bool(_ has: Bool, _ value: Bool) -> JSONValue? { has ? .bool(value) : nil }

    /// `field_schema` of a create-index request: the type's name, or its parameters object.
    static func fieldSchema(_ r: Qdrant_CreateFieldIndexCollection) -> JSONValue? {
        guard r.hasFieldIndexParams, let params = r.fieldIndexParams.indexParams else {
            return r.hasFieldType ? fieldType(r.fieldType) : nil
        }
        switch params {
        case .keywordIndexParams(let p):
            return object([("type", "keyword"), ("is_tenant", bool(p.hasIsTenant, p.isTenant)), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)), ("prefix", p.hasPrefix ? [:] : nil),
                           ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .integerIndexParams(let p):
            return object([("type", "integer"), ("lookup", bool(p.hasLookup, p.lookup)), ("range", bool(p.hasRange, p.range)),
                           ("is_principal", bool(p.hasIsPrincipal, p.isPrincipal)), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)), ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .floatIndexParams(let p):
            return object([("type", "float"), ("is_principal", bool(p.hasIsPrincipal, p.isPrincipal)), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)), ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .geoIndexParams(let p):
            return object([("type", "geo"), ("on_disk", bool(p.hasOnDisk, p.onDisk)), ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)),
                           ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .boolIndexParams(let p):
            return object([("type", "bool"), ("on_disk", bool(p.hasOnDisk, p.onDisk)), ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)),
                           ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .datetimeIndexParams(let p):
            return object([("type", "datetime"), ("is_principal", bool(p.hasIsPrincipal, p.isPrincipal)), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)), ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .uuidIndexParams(let p):
            return object([("type", "uuid"), ("is_tenant", bool(p.hasIsTenant, p.isTenant)), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)), ("memory", p.hasMemory ? memory(p.memory) : nil)])
        case .textIndexParams(let p):
            var stemmer: JSONValue?
            switch p.hasStemmer ? p.stemmer.stemmingParams : nil {
            case .snowball(let s): stemmer = ["type": "snowball", "language": .string(s.language)]
            case .disabled, nil: stemmer = nil
            }
            var stopwords: JSONValue?
            if p.hasStopwords {
                let s = p.stopwords
                stopwords = s.custom.isEmpty && s.languages.count == 1
                    ? .string(s.languages[0])
                    : ["languages": .array(s.languages.map(JSONValue.string)), "custom": .array(s.custom.map(JSONValue.string))]
            }
            return object([("type", "text"), ("tokenizer", tokenizer(p.tokenizer)), ("lowercase", bool(p.hasLowercase, p.lowercase)),
                           ("min_token_len", p.hasMinTokenLen ? .unsigned(p.minTokenLen) : nil),
                           ("max_token_len", p.hasMaxTokenLen ? .unsigned(p.maxTokenLen) : nil), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                           ("stopwords", stopwords), ("phrase_matching", bool(p.hasPhraseMatching, p.phraseMatching)), ("stemmer", stemmer),
                           ("ascii_folding", bool(p.hasAsciiFolding, p.asciiFolding)), ("enable_hnsw", bool(p.hasEnableHnsw, p.enableHnsw)),
                           ("memory", p.hasMemory ? memory(p.memory) : nil)])
        }
    }

    // MARK: Reads

    static func orderBy(_ o: Qdrant_OrderBy) -> JSONValue {
        var startFrom: JSONValue?
        switch o.hasStartFrom ? o.startFrom.value : nil {
        case .float(let d): startFrom = .double(d)
        case .integer(let i): startFrom = .int(i)
        case .timestamp(let t): startFrom = datetime(t)
        case .datetime(let s): startFrom = .string(s)
        case nil: startFrom = nil
        }
        return object([("key", .string(o.key)), ("direction", o.hasDirection ? (o.direction == .desc ? "desc" : "asc") : nil),
                       ("start_from", startFrom)])
    }

    static func strategy(_ s: Qdrant_RecommendStrategy) -> JSONValue {
        switch s {
        case .averageVector: "average_vector"
        case .bestScore: "best_score"
        case .sumScores: "sum_scores"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
    }

    /// A legacy search's `vector`: dense, or named, or a named sparse vector.
    static func searchVector(_ data: [Float], name: String?, sparseIndices: Qdrant_SparseIndices?) -> JSONValue {
        let vector: JSONValue = sparseIndices.map { ["indices": uints($0.data), "values": floats(data)] } ?? floats(data)
        guard let name else { return vector }
        return ["name": .string(name), "vector": vector]
    }

    /// The fields every search-like request shares.
    static func common(filter: Qdrant_Filter?, params: Qdrant_SearchParams?, limit: JSONValue?, offset: UInt64?,
                       withPayload: Qdrant_WithPayloadSelector?, withVectors: Qdrant_WithVectorsSelector?,
                       scoreThreshold: Float?, shardKey: JSONValue?) -> [(String, JSONValue?)] {
        [("filter", filter.map(json)), ("params", params.map(json)), ("limit", limit), ("offset", offset.map(JSONValue.unsigned)),
         ("with_payload", withPayload.flatMap(json)), ("with_vector", withVectors.flatMap(json)),
         ("score_threshold", scoreThreshold.map { .double(Double($0)) }), ("shard_key", shardKey)]
    }

    static func search(_ r: Qdrant_SearchPoints) -> JSONValue {
        object([("vector", searchVector(r.vector, name: r.hasVectorName ? r.vectorName : nil, sparseIndices: r.hasSparseIndices ? r.sparseIndices : nil))]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: .unsigned(r.limit),
                        offset: r.hasOffset ? r.offset : nil, withPayload: r.hasWithPayload ? r.withPayload : nil,
                        withVectors: r.hasWithVectors ? r.withVectors : nil, scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil,
                        shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    static func withLookup(_ w: Qdrant_WithLookup) -> JSONValue {
        object([("collection", .string(w.collection)), ("with_payload", w.hasWithPayload ? json(w.withPayload) : nil),
                ("with_vectors", w.hasWithVectors ? json(w.withVectors) : nil)])
    }

    static func searchGroups(_ r: Qdrant_SearchPointGroups) -> JSONValue {
        object([("vector", searchVector(r.vector, name: r.hasVectorName ? r.vectorName : nil, sparseIndices: r.hasSparseIndices ? r.sparseIndices : nil)),
                ("group_by", .string(r.groupBy)), ("group_size", .unsigned(UInt64(r.groupSize))), ("with_lookup", r.hasWithLookup ? withLookup(r.withLookup) : nil)]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: .unsigned(UInt64(r.limit)), offset: nil,
                        withPayload: r.hasWithPayload ? r.withPayload : nil, withVectors: r.hasWithVectors ? r.withVectors : nil,
                        scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil, shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    static func examples(_ ids: [Qdrant_PointId], _ vectors: [Qdrant_Vector]) -> JSONValue {
        .array(ids.map(json) + vectors.map(json))
    }

    static func recommend(_ r: Qdrant_RecommendPoints) -> JSONValue {
        object([("positive", examples(r.positive, r.positiveVectors)), ("negative", examples(r.negative, r.negativeVectors)),
                ("strategy", r.hasStrategy ? strategy(r.strategy) : nil), ("using", r.hasUsing ? .string(r.using) : nil),
                ("lookup_from", r.hasLookupFrom ? json(r.lookupFrom) : nil)]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: .unsigned(r.limit),
                        offset: r.hasOffset ? r.offset : nil, withPayload: r.hasWithPayload ? r.withPayload : nil,
                        withVectors: r.hasWithVectors ? r.withVectors : nil, scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil,
                        shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    static func recommendGroups(_ r: Qdrant_RecommendPointGroups) -> JSONValue {
        object([("positive", examples(r.positive, r.positiveVectors)), ("negative", examples(r.negative, r.negativeVectors)),
                ("strategy", r.hasStrategy ? strategy(r.strategy) : nil), ("using", r.hasUsing ? .string(r.using) : nil),
                ("lookup_from", r.hasLookupFrom ? json(r.lookupFrom) : nil), ("group_by", .string(r.groupBy)),
                ("group_size", .unsigned(UInt64(r.groupSize))), ("with_lookup", r.hasWithLookup ? withLookup(r.withLookup) : nil)]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: .unsigned(UInt64(r.limit)), offset: nil,
                        withPayload: r.hasWithPayload ? r.withPayload : nil, withVectors: r.hasWithVectors ? r.withVectors : nil,
                        scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil, shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    static func example(_ e: Qdrant_VectorExample) -> JSONValue {
        switch e.example {
        case nil: .null
        case .id(let id): json(id)
        case .vector(let v): json(v)
        }
    }

    static func discover(_ r: Qdrant_DiscoverPoints) -> JSONValue {
        var target: JSONValue?
        if case .single(let e)? = r.target.target { target = example(e) }
        return object([("target", target), ("context", .array(r.context.map { ["positive": example($0.positive), "negative": example($0.negative)] })),
                       ("using", r.hasUsing ? .string(r.using) : nil), ("lookup_from", r.hasLookupFrom ? json(r.lookupFrom) : nil)]
                      + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: .unsigned(r.limit),
                               offset: r.hasOffset ? r.offset : nil, withPayload: r.hasWithPayload ? r.withPayload : nil,
                               withVectors: r.hasWithVectors ? r.withVectors : nil, scoreThreshold: nil,
                               shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    // MARK: Query API

    static func contextPairs(_ pairs: [Qdrant_ContextInputPair]) -> JSONValue {
        .array(pairs.map { ["positive": json($0.positive), "negative": json($0.negative)] })
    }

    static func query(_ q: Qdrant_Query) -> JSONValue? {
        switch q.variant {
        case nil: return nil
        case .nearest(let v): return ["nearest": json(v)]
        case .nearestWithMmr(let n):
            let m = n.mmr
            return ["nearest": json(n.nearest),
                    "mmr": object([("diversity", m.hasDiversity ? .double(Double(m.diversity)) : nil),
                                   ("candidates_limit", m.hasCandidatesLimit ? .unsigned(UInt64(m.candidatesLimit)) : nil)])]
        case .recommend(let r):
            return ["recommend": object([("positive", .array(r.positive.map(json))), ("negative", .array(r.negative.map(json))),
                                         ("strategy", r.hasStrategy ? strategy(r.strategy) : nil)])]
        case .discover(let d): return ["discover": ["target": json(d.target), "context": contextPairs(d.context.pairs)]]
        case .context(let c): return ["context": contextPairs(c.pairs)]
        case .orderBy(let o): return ["order_by": orderBy(o)]
        case .fusion(let f): return ["fusion": f == .dbsf ? "dbsf" : "rrf"]
        case .rrf(let r):
            return ["rrf": object([("k", r.hasK ? .unsigned(UInt64(r.k)) : nil), ("weights", r.weights.isEmpty ? nil : floats(r.weights))])]
        case .sample: return ["sample": "random"]
        case .formula(let f): return ["formula": json(f.expression), "defaults": json(f.defaults)]
        case .relevanceFeedback(let r):
            var strategy: JSONValue = [:]
            if case .naive(let n)? = r.strategy.variant {
                strategy = ["naive": ["a": .double(Double(n.a)), "b": .double(Double(n.b)), "c": .double(Double(n.c))]]
            }
            return ["relevance_feedback": ["target": json(r.target),
                                           "feedback": .array(r.feedback.map { ["example": json($0.example), "score": .double(Double($0.score))] }),
                                           "strategy": strategy]]
        }
    }

    static func json(_ e: Qdrant_Expression) -> JSONValue {
        func decay(_ d: Qdrant_DecayParamsExpression) -> JSONValue {
            object([("x", json(d.x)), ("target", d.hasTarget ? json(d.target) : nil), ("scale", d.hasScale ? .double(Double(d.scale)) : nil),
                    ("midpoint", d.hasMidpoint ? .double(Double(d.midpoint)) : nil)])
        }
        switch e.variant {
        case nil: return .null
        case .constant(let c): return .double(Double(c))
        case .variable(let v): return .string(v)
        case .condition(let c): return json(c)
        case .geoDistance(let g): return ["geo_distance": ["origin": json(g.origin), "to": .string(g.to)]]
        case .datetime(let s): return ["datetime": .string(s)]
        case .datetimeKey(let s): return ["datetime_key": .string(s)]
        case .mult(let m): return ["mult": .array(m.mult.map(json))]
        case .sum(let s): return ["sum": .array(s.sum.map(json))]
        case .div(let d):
            return ["div": object([("left", json(d.left)), ("right", json(d.right)),
                                   ("by_zero_default", d.hasByZeroDefault ? .double(Double(d.byZeroDefault)) : nil)])]
        case .neg(let x): return ["neg": json(x)]
        case .abs(let x): return ["abs": json(x)]
        case .sqrt(let x): return ["sqrt": json(x)]
        case .pow(let p): return ["pow": ["base": json(p.base), "exponent": json(p.exponent)]]
        case .exp(let x): return ["exp": json(x)]
        case .log10(let x): return ["log10": json(x)]
        case .ln(let x): return ["ln": json(x)]
        case .expDecay(let d): return ["exp_decay": decay(d)]
        case .gaussDecay(let d): return ["gauss_decay": decay(d)]
        case .linDecay(let d): return ["lin_decay": decay(d)]
        }
    }

    static func prefetch(_ p: Qdrant_PrefetchQuery) -> JSONValue {
        object([("prefetch", p.prefetch.isEmpty ? nil : .array(p.prefetch.map(prefetch))), ("query", p.hasQuery ? query(p.query) : nil),
                ("using", p.hasUsing ? .string(p.using) : nil), ("filter", p.hasFilter ? json(p.filter) : nil),
                ("params", p.hasParams ? json(p.params) : nil), ("score_threshold", p.hasScoreThreshold ? .double(Double(p.scoreThreshold)) : nil),
                ("limit", p.hasLimit ? .unsigned(p.limit) : nil), ("lookup_from", p.hasLookupFrom ? json(p.lookupFrom) : nil)])
    }

    static func query(_ r: Qdrant_QueryPoints) -> JSONValue {
        object([("prefetch", r.prefetch.isEmpty ? nil : .array(r.prefetch.map(prefetch))), ("query", r.hasQuery ? query(r.query) : nil),
                ("using", r.hasUsing ? .string(r.using) : nil), ("lookup_from", r.hasLookupFrom ? json(r.lookupFrom) : nil)]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: r.hasLimit ? .unsigned(r.limit) : nil,
                        offset: r.hasOffset ? r.offset : nil, withPayload: r.hasWithPayload ? r.withPayload : nil,
                        withVectors: r.hasWithVectors ? r.withVectors : nil, scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil,
                        shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }

    static func queryGroups(_ r: Qdrant_QueryPointGroups) -> JSONValue {
        object([("prefetch", r.prefetch.isEmpty ? nil : .array(r.prefetch.map(prefetch))), ("query", r.hasQuery ? query(r.query) : nil),
                ("using", r.hasUsing ? .string(r.using) : nil), ("lookup_from", r.hasLookupFrom ? json(r.lookupFrom) : nil),
                ("group_by", .string(r.groupBy)), ("group_size", r.hasGroupSize ? .unsigned(r.groupSize) : nil),
                ("with_lookup", r.hasWithLookup ? withLookup(r.withLookup) : nil)]
               + common(filter: r.hasFilter ? r.filter : nil, params: r.hasParams ? r.params : nil, limit: r.hasLimit ? .unsigned(r.limit) : nil,
                        offset: nil, withPayload: r.hasWithPayload ? r.withPayload : nil, withVectors: r.hasWithVectors ? r.withVectors : nil,
                        scoreThreshold: r.hasScoreThreshold ? r.scoreThreshold : nil, shardKey: shardKey(r.hasShardKeySelector, r.shardKeySelector)))
    }
}
