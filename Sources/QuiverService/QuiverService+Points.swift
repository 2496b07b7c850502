public import QuiverJSON
public import QuiverModel
public import Storage

/// Points returned by retrieve and scroll, with what the wire format needs to render them.
public struct RecordsResult: Sendable {
    public var records: [PointRecord]
    /// The collection has one unnamed vector: render `vector` as a bare list.
    public var unnamedVector: Bool
    /// Scroll only: the id that starts the next page.
    public var nextPageOffset: PointID?
}

extension QuiverService {
    /// Default page size of scroll, as in Qdrant.
    public static let scrollLimitDefault = 10

    /// Any change to points: upsert, delete, vector and payload updates, by ids or by filter. Runs
    /// at write priority (``WritePriority``).
    public func update(_ collectionName: String, _ update: PointsUpdate, wait: Bool,
                       ordering: WriteOrdering = .weak) async throws(ServiceError) -> UpdateResult {
        try Access.require(collectionName, write: true)
        return try await WritePriority.run { () async throws(ServiceError) in
            let collection = try await self.collection(collectionName)
            try await self.checkStrictMode(update, on: collection)
            do throws(StorageError) {
                return try await collection.update(update, wait: wait, ordering: ordering)
            } catch {
                throw .storage(error)
            }
        }
    }

    /// `points/batch`: strict mode checks every operation first (against the collection as it is
    /// before the batch), then the operations apply in order, each before the next starts; the
    /// first failure stops the batch (earlier operations stay applied, as in Qdrant).
    public func updateBatch(_ collectionName: String, _ operations: [PointsUpdate], wait: Bool,
                            ordering: WriteOrdering = .weak) async throws(ServiceError) -> [UpdateResult] {
        try Access.require(collectionName, write: true)
        return try await WritePriority.run { () async throws(ServiceError) in
            let collection = try await self.collection(collectionName)
            for operation in operations { try await self.checkStrictMode(operation, on: collection) }
            var results: [UpdateResult] = []
            for operation in operations {
                do throws(StorageError) {
                    results.append(try await collection.update(operation, wait: wait, ordering: ordering))
                } catch {
                    throw .storage(error)
                }
            }
            return results
        }
    }

    public func retrieve(_ collectionName: String, _ ids: [PointID], withPayload: WithPayload, withVector: WithVector,
                         shardKey: ShardKeySelector? = nil, consistency: ReadConsistency = .default) async throws(ServiceError) -> RecordsResult {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        try await checkWorkingMemory(rows: Double(ids.count), withVector: withVector, withPayload: withPayload, for: "retrieve", on: collection)
        do {
            let records = try await collection.retrieve(ids, withPayload: withPayload, withVector: withVector, shardKey: shardKey,
                                                        consistency: consistency)
            return RecordsResult(records: records, unnamedVector: await Self.hasUnnamedVector(collection))
        } catch {
            throw .storage(error)
        }
    }

    /// One point; not found is a 404, as `GET /collections/{c}/points/{id}` in Qdrant.
    public func point(_ collectionName: String, _ id: PointID, consistency: ReadConsistency = .default) async throws(ServiceError) -> RecordsResult {
        try Access.require(collectionName)
        let result = try await retrieve(collectionName, [id], withPayload: .all, withVector: .all, consistency: consistency)
        guard !result.records.isEmpty else { throw .storage(.notFound("No point with id \(id) found")) }
        return result
    }

    static func scrollLimit(_ request: ScrollRequest) throws(ServiceError) -> Int {
        let limit = request.limit ?? Self.scrollLimitDefault
        if limit < 1 {
            var errors = ValidationErrors()
            errors.range("limit", limit, min: 1)
            throw .validation(errors, .body)
        }
        return limit
    }

    public func scroll(_ collectionName: String, _ request: ScrollRequest,
                       consistency: ReadConsistency = .default) async throws(ServiceError) -> RecordsResult {
        try Access.require(collectionName)
        let limit = try Self.scrollLimit(request)
        let collection = try await collection(collectionName)
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkLimit(request.limit)
            try limits.checkFilter(request.filter, schema: schema, update: false)
        }
        try await checkWorkingMemory(rows: Double(limit), withVector: request.withVector, withPayload: request.withPayload, for: "scroll", on: collection)
        do {
            if let orderBy = request.orderBy {
                let records = try await collection.scroll(orderedBy: orderBy, limit: limit, filter: request.filter, withPayload: request.withPayload,
                                                          withVector: request.withVector, shardKey: request.shardKey, consistency: consistency)
                return RecordsResult(records: records, unnamedVector: await Self.hasUnnamedVector(collection))
            }
            let (records, next) = try await collection.scroll(from: request.offset, limit: limit, filter: request.filter, withPayload: request.withPayload,
                                                              withVector: request.withVector, shardKey: request.shardKey, consistency: consistency)
            return RecordsResult(records: records, unnamedVector: await Self.hasUnnamedVector(collection), nextPageOffset: next)
        } catch {
            throw .storage(error)
        }
    }

    public func count(_ collectionName: String, _ request: CountRequest = CountRequest(),
                      consistency: ReadConsistency = .default) async throws(ServiceError) -> Int {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkFilter(request.filter, schema: schema, update: false)
            try limits.checkExact(request.exact)
        }
        do {
            return try await collection.count(filter: request.filter, shardKey: request.shardKey, consistency: consistency)
        } catch {
            throw .storage(error)
        }
    }

    func collection(_ name: String) async throws(ServiceError) -> Collection {
        do {
            return try await toc.collection(name)
        } catch {
            throw .storage(error)
        }
    }

    static func hasUnnamedVector(_ collection: Collection) async -> Bool {
        if case .single = await collection.config.params.vectors { return true }
        return false
    }
}

/// Search results with what the wire format needs to render them.
public struct SearchResult: Sendable {
    public var points: [ScoredPoint]
    public var unnamedVector: Bool
}

extension QuiverService {
    /// `points/query` and `points/search`. A query by point id searches with that point's vector
    /// (from `lookup_from` when given) and, within the same collection, leaves the point out.
    public func search(_ collectionName: String, _ request: SearchRequest,
                       consistency: ReadConsistency = .default) async throws(ServiceError) -> SearchResult {
        try await search(collectionName, request, consistency: consistency, memoryChecked: false)
    }

    /// `memoryChecked`: the working memory was checked for the whole batch this search is part of.
    private func search(_ collectionName: String, _ request: SearchRequest, consistency: ReadConsistency,
                        memoryChecked: Bool) async throws(ServiceError) -> SearchResult {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        try await checkStrictMode(request, on: collection)
        if !memoryChecked { try await checkWorkingMemory([request], on: collection) }
        var request = request
        try await resolvePointQueries(&request, in: collection, shardKey: request.shardKey)
        do {
            return SearchResult(points: try await collection.query(request, consistency: consistency), unnamedVector: await Self.hasUnnamedVector(collection))
        } catch {
            throw .storage(error)
        }
    }

    /// A batch of searches (`…/batch` over REST, `SearchBatch`, `QueryBatch`, … over gRPC), held to
    /// strict mode's batch limit, each answered in turn.
    public func searchBatch(_ collectionName: String, _ searches: [SearchRequest],
                            consistency: ReadConsistency = .default) async throws(ServiceError) -> [SearchResult] {
        try Access.require(collectionName)
        try await checkSearchBatch(collectionName, count: searches.count)
        try await checkWorkingMemory(searches, on: try await collection(collectionName))
        var results: [SearchResult] = []
        for search in searches { results.append(try await self.search(collectionName, search, consistency: consistency, memoryChecked: true)) }
        return results
    }

    /// A query by point id, at any level of the prefetch tree, becomes a query by that point's
    /// vector (from `lookup_from` when given); within the same collection the point itself is
    /// left out of that level's results.
    /// The examples of recommend, discover and context queries likewise.
    func resolvePointQueries(_ request: inout SearchRequest, in collection: Collection, shardKey: ShardKeySelector?) async throws(ServiceError) {
        for i in request.prefetch.indices { try await resolvePointQueries(&request.prefetch[i], in: collection, shardKey: shardKey) }
        guard let query = request.query else { return }
        var source = collection
        if let lookup = request.lookupFrom {
            try Access.require(lookup.collection)  // a token must name the collection looked up too
            source = try await self.collection(lookup.collection)
        }
        let name = request.lookupFrom?.vector ?? request.using
        var mentioned = Set<PointID>()
        func resolve(_ example: QueryInput) async throws(ServiceError) -> QueryInput {
            guard case .point(let id) = example else { return example }
            let found: QueryInput?
            do {
                found = try await source.vector(of: id, name: name, shardKey: request.lookupFrom == nil ? shardKey : nil)
            } catch {
                throw .storage(error)
            }
            guard let vector = found else { throw .storage(.notFound("No point with id \(id) found")) }
            mentioned.insert(id)
            return vector
        }
        func resolve(_ pairs: [ContextPair]) async throws(ServiceError) -> [ContextPair] {
            var result: [ContextPair] = []
            for pair in pairs { result.append(ContextPair(positive: try await resolve(pair.positive), negative: try await resolve(pair.negative))) }
            return result
        }
        switch query {
        case .point:
            request.query = try await resolve(query)
        case .recommend(let positive, let negative, let strategy):
            var resolvedPositive: [QueryInput] = [], resolvedNegative: [QueryInput] = []
            for example in positive { resolvedPositive.append(try await resolve(example)) }
            for example in negative { resolvedNegative.append(try await resolve(example)) }
            request.query = .recommend(positive: resolvedPositive, negative: resolvedNegative, strategy: strategy)
        case .discover(let target, let context):
            request.query = .discover(target: try await resolve(target), context: try await resolve(context))
        case .context(let context):
            request.query = .context(try await resolve(context))
        case .relevanceFeedback(let target, let feedback, let a, let b, let c):
            var items: [FeedbackItem] = []
            for item in feedback { items.append(FeedbackItem(example: try await resolve(item.example), score: item.score)) }
            request.query = .relevanceFeedback(target: try await resolve(target), feedback: items, a: a, b: b, c: c)
        case .vector, .sparse, .multi, .orderBy, .fusion, .sample, .formula:
            return
        }
        if request.lookupFrom == nil, !mentioned.isEmpty {
            var filter = request.filter ?? Filter()
            filter.mustNot = (filter.mustNot ?? []) + [.hasID(mentioned)]
            request.filter = filter
        }
    }

    public func optimizations(_ collectionName: String) async throws(ServiceError) -> OptimizationsReport {
        try Access.require(collectionName)
        return await (try collection(collectionName)).optimizations()
    }
}

extension QuiverService {
    /// `PUT /collections/{c}/index`: through consensus; this peer builds the index over its stored
    /// points before it answers.
    public func createIndex(_ collectionName: String, _ request: CreateFieldIndex, wait: Bool) async throws(ServiceError) -> UpdateResult {
        try Access.require(collectionName, write: true, extras: true)
        let collection = try await collection(collectionName)
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkPayloadIndexCount(existing: schema.count)
        }
        try requireWritableDisk(quota: true)
        _ = try await propose(.setPayloadIndex(collection: collection.name, field: request.fieldName, schema: request.schema.json), timeout: nil)
        return UpdateResult(operationId: nil, status: wait ? .completed : .acknowledged)
    }

    /// `DELETE /collections/{c}/index/{field}`.
    public func deleteIndex(_ collectionName: String, _ field: String, wait: Bool) async throws(ServiceError) -> UpdateResult {
        try Access.require(collectionName, write: true, extras: true)
        let collection = try await collection(collectionName)
        _ = try await propose(.setPayloadIndex(collection: collection.name, field: field, schema: nil), timeout: nil)
        return UpdateResult(operationId: nil, status: wait ? .completed : .acknowledged)
    }
}

extension QuiverService {
    /// `POST /collections/{c}/facet`.
    public func facet(_ collectionName: String, _ request: FacetRequest,
                      consistency: ReadConsistency = .default) async throws(ServiceError) -> [(value: JSONValue, count: Int)] {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkLimit(request.limit)
            try limits.checkFilter(request.filter, schema: schema, update: false)
            try limits.checkExact(request.exact)
        }
        do {
            return try await collection.facet(request, consistency: consistency)
        } catch {
            throw .storage(error)
        }
    }
}

extension QuiverService {
    /// `points/query/groups` and the legacy `search/groups` and `recommend/groups`; with
    /// `with_lookup`, each group gets the record of the lookup collection whose id is the group id.
    public func queryGroups(_ collectionName: String, _ request: GroupsRequest,
                            consistency: ReadConsistency = .default) async throws(ServiceError) -> (groups: [PointGroup], unnamedVector: Bool) {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        var checked = request.search
        checked.limit = request.limit
        try await checkStrictMode(checked, on: collection)
        try await checkWorkingMemory(rows: Double(request.limit) * Double(request.groupSize), withVector: request.search.withVector,
                                      withPayload: request.search.withPayload,
                                      for: "query of groups", on: collection)
        var request = request
        try await resolvePointQueries(&request.search, in: collection, shardKey: request.search.shardKey)
        if let lookup = request.withLookup { try Access.require(lookup.collection) }
        let lookupCollection: Collection? = if let lookup = request.withLookup { try await self.collection(lookup.collection) } else { nil }
        do {
            var groups = try await collection.queryGroups(request, consistency: consistency)
            if let lookup = request.withLookup, let lookupCollection {
                let ids = groups.compactMap(\.pointID)
                let records = try await lookupCollection.retrieve(ids, withPayload: lookup.withPayload, withVector: lookup.withVector,
                                                                  consistency: consistency)
                for i in groups.indices {
                    groups[i].lookup = groups[i].pointID.flatMap { id in records.first { $0.id == id } }
                }
            }
            return (groups, await Self.hasUnnamedVector(collection))
        } catch {
            throw .storage(error)
        }
    }
}

extension QuiverService {
    /// `search/matrix/pairs` and `search/matrix/offsets`.
    public func searchMatrix(_ collectionName: String, _ request: MatrixRequest,
                             consistency: ReadConsistency = .default) async throws(ServiceError) -> (ids: [PointID], rows: [[ScoredPoint]]) {
        try Access.require(collectionName)
        let collection = try await collection(collectionName)
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkFilter(request.filter, schema: schema, update: false)
        }
        try await checkWorkingMemory(matrix: request, on: collection)
        do {
            return try await collection.searchMatrix(request, consistency: consistency)
        } catch {
            throw .storage(error)
        }
    }
}
