public import QuiverModel

/// The distance matrix (`search/matrix/pairs`, `search/matrix/offsets`): a random sample of the
/// points that have the vector and pass the filter, each searched among the others of the sample.
extension Collection {
    /// The sample's ids in id order and, for each, its nearest neighbours within the sample (as a
    /// search by its vector ranks them). Fewer than two matching points make an empty matrix.
    public func searchMatrix(_ request: MatrixRequest, consistency: ReadConsistency = .default) async throws(StorageError) -> (ids: [PointID], rows: [[ScoredPoint]]) {
        guard config.params.vectors.all[request.using] != nil || config.params.sparseVectors?[request.using] != nil else {
            throw .badInput("Not existing vector name error: \(request.using)")
        }
        let withVector = Filter.all(request.filter, Filter(must: [.hasVector(request.using)]))
        var candidates: [PointID] = []
        var offset: PointID?
        repeat {
            let (records, next) = try await scroll(from: offset, limit: 10_000, filter: withVector, withPayload: .none, withVector: .none,
                                                   shardKey: request.shardKey, consistency: consistency)
            candidates += records.map(\.id)
            offset = next
        } while offset != nil
        guard candidates.count >= 2 else { return ([], []) }
        let ids = Array(candidates.shuffled().prefix(request.sample)).sorted()
        var rows: [[ScoredPoint]] = []
        for id in ids {
            guard let vector = try await vector(of: id, name: request.using, shardKey: request.shardKey) else {
                rows.append([])
                continue
            }
            var search = SearchRequest()
            search.query = vector
            search.using = request.using
            search.limit = request.limit
            search.shardKey = request.shardKey
            search.filter = Filter.all(request.filter, Filter(must: [.hasID(Set(ids.filter { $0 != id }))]))
            rows.append(try await self.search(search, consistency: consistency))
        }
        return (ids, rows)
    }
}
