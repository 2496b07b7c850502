import CVectorKernels
public import QuiverJSON
public import QuiverModel
import Shard
import VectorIndex

/// Nearest-neighbour search across the collection's shards.
extension Collection {
    /// Runs `request`, whose query is a vector by now (the service resolves point ids): each shard
    /// finds its best `offset + limit`, and the merged list is cut to the page.
    public func search(_ request: SearchRequest, consistency: ReadConsistency = .default) async throws(StorageError) -> [ScoredPoint] {
        var request = request
        _ = try prepare(request.filter)
        if let mmr = request.mmr { return try await searchMMR(request, mmr, consistency: consistency) }
        let window = request.offset + request.limit
        if case .orderBy(let orderBy)? = request.query {
            let records = try await scroll(orderedBy: orderBy, limit: window, filter: request.filter, withPayload: request.withPayload,
                                           withVector: request.withVector, shardKey: request.shardKey, consistency: consistency)
            return records.dropFirst(request.offset).map { record in
                ScoredPoint(record, score: 0, version: record.version ?? 0)
            }
        }
        if case .sparse(let query)? = request.query { return try await searchSparse(query, request, consistency: consistency) }
        if case .sample(var seed)? = request.query {
            if seed == 0 { seed = UInt64.random(in: 1...UInt64.max) }
            var wide = request
            wide.query = .sample(seed: seed)
            wide.limit = window
            wide.offset = 0
            let lists: [[ScoredPoint]] = try await fanOut(.search(wide), try scope(request.shardKey, write: false), consistency: consistency)
                .map { if case .points(let points) = $0 { points } else { [] } }
            return Array(Self.shuffled(lists, seed: seed, limit: window).dropFirst(request.offset))
        }
        switch request.query {
        case .recommend(let positive, let negative, .averageVector)?:
            request.query = try averageQuery(positive: positive, negative: negative, using: request.using)
            return try await search(request, consistency: consistency)
        case .recommend?, .discover?, .context?, .relevanceFeedback?:
            try checkExamples(Self.examples(of: request.query!), using: request.using)
            return try await searchShards(request, higherIsBetter: true, consistency: consistency)
        default:
            break
        }
        if let params = config.params.vectors.all[request.using], params.multivectorConfig != nil {
            switch request.query {
            case .vector(let vector)?:
                guard vector.count == Int(params.size) else {
                    throw .badInput("Vector dimension error: expected dim: \(params.size), got \(vector.count)")
                }
                request.query = .multi(try multiQuery(MultiVector(dimension: vector.count, flat: vector), using: request.using))
            case .multi(let query)?: request.query = .multi(try multiQuery(query, using: request.using))
            default: break
            }
            if case .multi? = request.query {
                return try await searchShards(request, higherIsBetter: params.distance.higherIsBetter, consistency: consistency)
            }
        } else if case .multi(let query)? = request.query {
            _ = try multiQuery(query, using: request.using)
        }
        guard case .vector(var query)? = request.query else {
            // No query: points in id order, as a scroll would return them.
            let (records, _) = try await scroll(from: nil, limit: window, filter: request.filter, withPayload: request.withPayload,
                                                withVector: request.withVector, shardKey: request.shardKey, consistency: consistency)
            return records.dropFirst(request.offset).map { ScoredPoint($0, score: 0, version: $0.version ?? 0) }
        }
        // Only a search by vector names a vector (`order_by` and no query need none).
        if config.params.sparseVectors?[request.using] != nil { throw .badInput("Conversion between sparse and regular vectors failed") }
        guard let params = config.params.vectors.all[request.using] else {
            throw .badInput(request.using.isEmpty
                ? "Not existing vector name error: the collection has only named vectors (\(config.params.vectors.all.keys.sorted().joined(separator: ", "))); set `using`"
                : "Not existing vector name error: \(request.using)")
        }
        guard query.count == Int(params.size) else {
            throw .badInput("Vector dimension error: expected dim: \(params.size), got \(query.count)")
        }
        if params.distance == .cosine { quiver_normalize_f32(&query, query.count) }
        request.query = .vector(query)
        return try await searchShards(request, higherIsBetter: params.distance.higherIsBetter, consistency: consistency)
    }

    /// Each shard's best `offset + limit` for `request` (`groups` when the caller has taken
    /// them), merged and cut to the page.
    private func searchShards(_ request: SearchRequest, higherIsBetter: Bool, groups: [[ShardInfo]]? = nil,
                              consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        let window = request.offset + request.limit
        let groups = if let groups { groups } else { try scope(request.shardKey, write: false) }
        var wide = request
        wide.limit = window
        wide.offset = 0
        let lists: [[ScoredPoint]] = try await fanOut(.search(wide), groups, consistency: consistency).map { if case .points(let points) = $0 { points } else { [] } }
        return Array(Self.mergeByScore(lists, higherIsBetter: higherIsBetter, limit: window).dropFirst(request.offset))
    }

    /// A search by sparse vector: with the `idf` modifier, the query's weights first multiplied by
    /// each dimension's idf over every shard the search reaches; then each shard's best window.
    func searchSparse(_ query: SparseVector, _ request: SearchRequest, consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        guard let params = config.params.sparseVectors?[request.using] else {
            if config.params.vectors.all[request.using] != nil { throw .badInput("Conversion between sparse and regular vectors failed") }
            throw .badInput("Not existing vector name error: \(request.using)")
        }
        let groups = try scope(request.shardKey, write: false)
        var request = request
        if params.modifier == .idf, !query.isEmpty {
            var statistics = SparseStatistics()
            _ = try prepare(request.params.idfCorpus)
            for case .sparseStatistics(let part) in try await fanOut(.sparseStatistics(name: request.using, indices: query.indices,
                                                                                       filter: request.params.idfCorpus),
                                                                     groups, consistency: consistency, charged: false) {
                statistics.add(part)
            }
            request.query = .sparse(statistics.idfWeighted(query))
        }
        return try await searchShards(request, higherIsBetter: true, groups: groups, consistency: consistency)
    }

    /// Random samples of shards combined: all their points in an order drawn with `seed`, cut to `limit`.
    static func shuffled(_ lists: [[ScoredPoint]], seed: UInt64, limit: Int) -> [ScoredPoint] {
        var generator = SplitMix(seed: seed)
        return Array(lists.joined().shuffled(using: &generator).prefix(limit))
    }

    /// A multivector query checked against vector `using` (a multivector of the same dimension),
    /// its rows normalised for Cosine.
    func multiQuery(_ query: MultiVector, using: String) throws(StorageError) -> MultiVector {
        if config.params.sparseVectors?[using] != nil { throw .badInput("Conversion between sparse and regular vectors failed") }
        guard let params = config.params.vectors.all[using] else {
            throw .badInput(using.isEmpty
                ? "Not existing vector name error: the collection has only named vectors (\(config.params.vectors.all.keys.sorted().joined(separator: ", "))); set `using`"
                : "Not existing vector name error: \(using)")
        }
        guard params.multivectorConfig != nil else { throw .badInput("Conversion between multi and regular vectors failed") }
        guard query.dimension == Int(params.size) else {
            throw .badInput("Vector dimension error: expected dim: \(params.size), got \(query.dimension)")
        }
        guard params.distance == .cosine else { return query }
        return query.mapRows { row in
            var row = row
            quiver_normalize_f32(&row, row.count)
            return row
        }
    }

    /// Whether a search's scores rank higher first (similarities, sparse dot products) or lower.
    func higherIsBetter(_ request: SearchRequest) -> Bool {
        switch request.query {
        case .recommend?, .discover?, .context?, .relevanceFeedback?: true
        default: config.params.vectors.all[request.using]?.distance.higherIsBetter ?? true
        }
    }

    /// This peer's part of a search: each local shard's best `request.limit`, merged.
    func searchLocal(_ request: SearchRequest, _ targets: [LocalShard]) async throws(StorageError) -> [ScoredPoint] {
        if let query = request.query, let score = exampleScorer(query, using: request.using) {
            let filter = try prepare(request.filter)
            var lists: [[ScoredPoint]] = []
            for shard in targets {
                lists.append(await shard.searchEach(request.using, filter: filter, limit: request.limit, threshold: request.scoreThreshold,
                                                    withPayload: request.withPayload, withVector: request.withVector, score: score))
            }
            return Self.mergeByScore(lists, higherIsBetter: true, limit: request.limit)
        }
        if case .sample(let seed)? = request.query {
            let filter = try prepare(request.filter)
            var lists: [[ScoredPoint]] = []
            for (i, shard) in targets.enumerated() {
                lists.append(await shard.sample(seed: seed &+ UInt64(i), filter: filter, limit: request.limit,
                                                withPayload: request.withPayload, withVector: request.withVector))
            }
            return Self.shuffled(lists, seed: seed, limit: request.limit)
        }
        if case .sparse(let query)? = request.query {
            let filter = try prepare(request.filter)
            var lists: [[ScoredPoint]] = []
            for shard in targets {
                lists.append(await shard.searchSparse(query, using: request.using, filter: filter, limit: request.limit, threshold: request.scoreThreshold,
                                                      withPayload: request.withPayload, withVector: request.withVector))
            }
            return Self.mergeByScore(lists, higherIsBetter: true, limit: request.limit)
        }
        guard let params = config.params.vectors.all[request.using] else { return [] }
        let filter = try prepare(request.filter)
        let fullScanThreshold = config.hnswConfig.applying(params.hnswConfig).fullScanPoints(dimension: Int(params.size))
        // As Qdrant: with `indexed_only`, a segment without a graph is searched only when the
        // vectors it would scan take at most the larger of the indexing and full-scan thresholds.
        let vectorBytes = Int(params.size) * (params.datatype ?? .float32).elementBytes
        let unindexedPointsMax = request.params.indexedOnly
            ? max(config.optimizerConfig.indexingThresholdKB, config.hnswConfig.fullScanThreshold) * 1024 / max(1, vectorBytes) : nil
        let acorn = request.params.acornEnable ? request.params.acornMaxSelectivity ?? SearchParams.acornMaxSelectivityDefault : nil
        let options = SearchOptions(exact: request.params.exact, fullScanThreshold: fullScanThreshold, hnswEf: request.params.hnswEf,
                                    ignoreQuantization: request.params.quantizationIgnore, rescore: request.params.quantizationRescore,
                                    oversampling: request.params.quantizationOversampling ?? 1, unindexedPointsMax: unindexedPointsMax,
                                    acornMaxSelectivity: acorn)
        var lists: [[ScoredPoint]] = []
        switch request.query {
        case .vector(let query)?:
            // The shards at once: each holds its actor only to scan its appendable segments. The
            // lists are merged in shard order, so equal scores resolve the same way every time.
            let searchOne: @Sendable (LocalShard) async -> [ScoredPoint] = { shard in
                await shard.search(query, using: request.using, distance: params.distance, filter: filter, limit: request.limit,
                                   threshold: request.scoreThreshold, withPayload: request.withPayload, withVector: request.withVector,
                                   options: options)
            }
            lists = await withTaskGroup(of: (Int, [ScoredPoint]).self) { group in
                // On the shared pool, as `LocalShard.inParallel` shares out segments.
                for (i, shard) in targets.enumerated().dropFirst() {
                    group.addTask(executorPreference: globalConcurrentExecutor) { (i, await searchOne(shard)) }
                }
                var lists: [(Int, [ScoredPoint])] = []
                if let first = targets.first { lists.append((0, await searchOne(first))) }
                for await list in group { lists.append(list) }
                return lists.sorted { $0.0 < $1.0 }.map(\.1)
            }
        case .multi(let query)?:
            for shard in targets {
                lists.append(await shard.searchMulti(query, using: request.using, distance: params.distance, filter: filter, limit: request.limit,
                                                     threshold: request.scoreThreshold, withPayload: request.withPayload,
                                                     withVector: request.withVector, options: options))
            }
        default:
            return []
        }
        return Self.mergeByScore(lists, higherIsBetter: params.distance.higherIsBetter, limit: request.limit)
    }
}

/// Scrolling by payload value and facets, which need a payload index, as in Qdrant.
extension Collection {
    public func scroll(orderedBy orderBy: OrderBy, limit: Int, filter: Filter?, withPayload: WithPayload, withVector: WithVector,
                       shardKey: ShardKeySelector? = nil, consistency: ReadConsistency = .default) async throws(StorageError) -> [PointRecord] {
        let groups = try scope(shardKey, write: false)
        _ = try prepare(filter)
        let schema = payloadSchema[orderBy.key]
        let rangeCapable = switch schema?.type {
        case .integer?: schema?.params?["range"] != .bool(false)
        case .float?, .datetime?: true
        default: false
        }
        guard rangeCapable else {
            throw .badRequest("No range index for `order_by` key: `\(orderBy.key)`. Please create one to use `order_by`. Check https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload schemas support Range conditions")
        }
        let responses = try await fanOut(.scrollOrdered(orderBy: orderBy, limit: limit, filter: filter, withPayload: withPayload,
                                                        withVector: withVector), groups, consistency: consistency)
        return Self.mergeByValue(Self.records(responses), orderBy: orderBy, limit: limit)
    }

    /// The most frequent values of `request.key` among the points matching the filter, with their
    /// counts (always exact), most frequent first, ties by value.
    public func facet(_ request: FacetRequest, consistency: ReadConsistency = .default) async throws(StorageError) -> [(value: JSONValue, count: Int)] {
        let groups = try scope(request.shardKey, write: false)
        _ = try prepare(request.filter)
        guard let type = payloadSchema[request.key]?.type, [.keyword, .integer, .bool, .uuid].contains(type) else {
            throw .badRequest("Index required but not found for \"\(request.key)\" of one of the following types: [keyword, integer, bool, uuid]. Help: Create an index for this key or use a different filter.")
        }
        var counts: [JSONValue: Int] = [:]
        for response in try await fanOut(.facet(key: request.key, filter: request.filter), groups, consistency: consistency) {
            guard case .facets(let part) = response else { continue }
            for entry in part { counts[entry.value, default: 0] += entry.count }
        }
        let ordered = counts.sorted { a, b in
            a.value != b.value ? a.value > b.value : Self.facetOrder(a.key, b.key)
        }
        return ordered.prefix(request.limit ?? FacetRequest.limitDefault).map { ($0.key, $0.value) }
    }

    /// Booleans, then integers, then strings, each ascending.
    static func facetOrder(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.bool(let x), .bool(let y)): return !x && y
        case (.int(let x), .int(let y)): return x < y
        case (.string(let x), .string(let y)): return x < y
        case (.bool, _): return true
        case (.int, .string): return true
        default: return false
        }
    }
}
