public import QuiverJSON
public import QuiverModel

/// The Query API's prefetch tree, run at the collection level: each prefetch is a whole-collection
/// search (its best `limit` over every shard), so a sharded collection answers exactly as one
/// node does. A level's query then ranks the points its prefetches found, or fuses their lists.
extension Collection {
    /// `points/query`: `request` with its prefetches (the service has resolved point ids into
    /// vectors by now).
    public func query(_ request: SearchRequest, consistency: ReadConsistency = .default) async throws(StorageError) -> [ScoredPoint] {
        try Self.checkQuery(request)
        guard !request.prefetch.isEmpty else {
            if case .fusion? = request.query { return [] }
            if case .formula? = request.query { throw .badRequest("A formula rescores the points of prefetches: give it at least one prefetch") }
            return try await search(request, consistency: consistency)
        }
        var sources: [[ScoredPoint]] = []
        for prefetch in request.prefetch {
            sources.append(try await runPrefetch(prefetch, inherited: request.filter, shardKey: request.shardKey, consistency: consistency))
        }
        return try await merge(sources, request, consistency: consistency)
    }

    /// Qdrant's checks of a query level.
    static func checkQuery(_ request: SearchRequest) throws(StorageError) {
        if !request.prefetch.isEmpty && request.query == nil {
            throw .badRequest("A query is needed to merge the prefetches. Can't have prefetches without defining a query.")
        }
        if request.scoreThreshold != nil {
            switch request.query {
            case .orderBy?: throw .badRequest("Can't use score_threshold with an order_by query.")
            case nil: throw .badRequest("A query is needed to use the score_threshold. Can't have score_threshold without defining a query.")
            default: break
            }
        }
        if case .fusion(let fusion)? = request.query {
            if request.using != VectorsConfig.defaultVectorName {
                throw .badRequest("Fusion queries cannot be combined with the 'using' field.")
            }
            if case .rrf(_, let weights?) = fusion, weights.count != request.prefetch.count {
                throw .badInput("Number of weights in RRF should match number of pre-fetches: got \(weights.count), expected \(request.prefetch.count)")
            }
        }
        for prefetch in request.prefetch { try checkQuery(prefetch) }
    }

    /// One prefetch: its filter joined to the levels' above it (so its limit counts filtered
    /// points; see ``Filter/merged(_:_:)``), its own prefetches first when it has any.
    private func runPrefetch(_ prefetch: SearchRequest, inherited: Filter?, shardKey: ShardKeySelector?,
                             consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        var level = prefetch
        level.filter = Filter.merged(inherited, prefetch.filter)
        level.withPayload = .none
        level.withVector = .none
        level.offset = 0
        level.shardKey = shardKey
        guard !level.prefetch.isEmpty else {
            if case .fusion? = level.query { return [] }
            return try await search(level, consistency: consistency)
        }
        var sources: [[ScoredPoint]] = []
        for inner in level.prefetch {
            sources.append(try await runPrefetch(inner, inherited: level.filter, shardKey: shardKey, consistency: consistency))
        }
        return try await merge(sources, level, consistency: consistency)
    }

    /// A level's answer from its prefetches' lists: fused, or the points they found ranked by the
    /// level's query (restricted to them with a `has_id` condition).
    private func merge(_ sources: [[ScoredPoint]], _ request: SearchRequest, consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        if case .formula(let formula)? = request.query { return try await rescore(sources, with: formula, request, consistency: consistency) }
        guard case .fusion(let fusion)? = request.query else {
            let ids = Set(sources.joined().map(\.id))
            guard !ids.isEmpty else { return [] }
            var ranked = request
            ranked.prefetch = []
            ranked.filter = Filter.all(request.filter, Filter(must: [.hasID(ids)]))
            return try await search(ranked, consistency: consistency)
        }
        var fused = fusion.fuse(sources, limit: request.offset + request.limit)
        if let threshold = request.scoreThreshold { fused = fused.filter { $0.score >= threshold } }
        fused = Array(fused.dropFirst(request.offset))
        guard request.withPayload != .none || request.withVector != .none, !fused.isEmpty else { return fused }
        let records = try await retrieve(fused.map(\.id), withPayload: request.withPayload, withVector: request.withVector,
                                         shardKey: request.shardKey, consistency: consistency)
        var byID: [PointID: PointRecord] = [:]
        for record in records { byID[record.id] = record }
        return fused.compactMap { point in
            guard let record = byID[point.id] else { return nil }
            return ScoredPoint(record, score: point.score, version: point.version)
        }
    }
}

extension Filter {
    /// Both filters (either may be absent).
    static func all(_ a: Filter?, _ b: Filter?) -> Filter? {
        guard let a else { return b }
        guard let b else { return a }
        return Filter(must: [.filter(a), .filter(b)])
    }

    /// A level's filter joined to a prefetch's as Qdrant joins them: clause by clause, so the
    /// `should` conditions of both become alternatives of one another (not both required), and
    /// `min_should` takes the conditions of both with the larger count.
    static func merged(_ a: Filter?, _ b: Filter?) -> Filter? {
        guard let a else { return b }
        guard let b else { return a }
        func join(_ x: [Condition]?, _ y: [Condition]?) -> [Condition]? {
            guard let x else { return y }
            guard let y else { return x }
            return x + y
        }
        var minShould = a.minShould ?? b.minShould
        if let first = a.minShould, let second = b.minShould {
            minShould = MinShould(conditions: first.conditions + second.conditions, minCount: max(first.minCount, second.minCount))
        }
        return Filter(must: join(a.must, b.must), should: join(a.should, b.should), mustNot: join(a.mustNot, b.mustNot), minShould: minShould)
    }
}

extension Fusion {
    /// The lists fused into one, best first, at most `limit` long. Ties keep the order in which
    /// the points were first met.
    public func fuse(_ lists: [[ScoredPoint]], limit: Int) -> [ScoredPoint] {
        var order: [PointID] = []
        var points: [PointID: ScoredPoint] = [:]
        func add(_ point: ScoredPoint, _ score: Float) {
            if points[point.id] == nil {
                order.append(point.id)
                var first = point
                first.score = score
                points[point.id] = first
            } else {
                points[point.id]!.score += score
            }
        }
        switch self {
        case .rrf(let k, let weights):
            let k = Float(k ?? Self.defaultK)
            for (i, list) in lists.enumerated() {
                let weight = weights?[i] ?? 1
                for (position, point) in list.enumerated() {
                    add(point, weight <= 0 ? 0 : 1 / (Float(position + 1) / weight + k - 1))
                }
            }
        case .dbsf:
            for list in lists where !list.isEmpty {
                for (point, score) in zip(list, Self.normalized(list.map(\.score))) { add(point, score) }
            }
        }
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        let sorted = points.values.sorted { a, b in a.score != b.score ? a.score > b.score : rank[a.id]! < rank[b.id]! }
        return Array(sorted.prefix(limit))
    }

    /// Scores mapped from mean ± 3 sample standard deviations to 0…1 (0.5 each when there is one
    /// score or they are all equal).
    static func normalized(_ scores: [Float]) -> [Float] {
        guard scores.count > 1 else { return scores.map { _ in 0.5 } }
        let values = scores.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        guard variance > 0 else { return scores.map { _ in 0.5 } }
        let deviation = variance.squareRoot()
        let low = mean - 3 * deviation, high = mean + 3 * deviation
        return values.map { Float(($0 - low) / (high - low)) }
    }
}

extension Collection {
    /// A formula level: every point the prefetches found (in the order first found), scored by
    /// the formula over its prefetch scores and payload, best first (ties in that order).
    func rescore(_ sources: [[ScoredPoint]], with formula: Formula, _ request: SearchRequest,
                 consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        var formula = formula
        do {
            formula.expression = try formula.expression.mapConditions { condition in
                guard let prepared = try prepare(Filter(must: [condition])) else { return condition }
                return .filter(prepared)
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw .badRequest("\(error)")
        }
        var order: [PointID] = []
        var seen = Set<PointID>()
        for list in sources { for point in list where seen.insert(point.id).inserted { order.append(point.id) } }
        guard !order.isEmpty else { return [] }
        let scores = sources.map { list in Dictionary(list.map { ($0.id, $0.score) }, uniquingKeysWith: { first, _ in first }) }
        let records = try await retrieve(order, withPayload: .all, withVector: formula.expression.hasConditions ? .all : request.withVector,
                                         shardKey: request.shardKey, consistency: consistency)
        var byID: [PointID: PointRecord] = [:]
        for record in records { byID[record.id] = record }
        var rescored: [ScoredPoint] = []
        for id in order {
            guard let record = byID[id] else { continue }
            let point = FormulaPoint(id: id, payload: record.payload ?? JSONObject(), scores: scores.map { $0[id] }) { name in
                record.vectors?[name] != nil || record.sparse?[name] != nil || record.multi?[name] != nil
            }
            let score: Float
            do throws(FormulaError) {
                score = try formula.score(point)
            } catch {
                throw .badRequest(error.message)
            }
            var scored = Self.trimmed(ScoredPoint(record, score: score, version: record.version ?? 0), to: request.withVector)
            scored.payload = request.withPayload == .none ? nil : request.withPayload.apply(record.payload)
            rescored.append(scored)
        }
        let ranked = rescored.enumerated().sorted { a, b in a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset }
            .map(\.element).prefix(request.offset + request.limit)
        return Array(ranked.filter { point in request.scoreThreshold.map { point.score >= $0 } ?? true }.dropFirst(request.offset))
    }
}
