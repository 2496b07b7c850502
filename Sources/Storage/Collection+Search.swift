import CVectorKernels
public import QuiverModel
import Shard

/// Nearest-neighbour search across the collection's shards.
extension Collection {
    /// The stored vector `name` of point `id`, or nil when the point (or that vector) is missing.
    public func vector(of id: PointID, name: String) async -> [Float]? {
        await shards[Self.shardIndex(of: id, shardCount: shards.count)].vector(of: id, name: name)
    }

    /// Runs `request`, whose query is a vector by now (the service resolves point ids): each shard
    /// finds its best `offset + limit`, and the merged list is cut to the page.
    public func search(_ request: SearchRequest) async throws(StorageError) -> [ScoredPoint] {
        guard let params = config.params.vectors.all[request.using] else {
            throw .badInput(request.using.isEmpty
                ? "Not existing vector name error: the collection has only named vectors (\(config.params.vectors.all.keys.sorted().joined(separator: ", "))); set `using`"
                : "Not existing vector name error: \(request.using)")
        }
        let window = request.offset + request.limit
        guard case .vector(var query)? = request.query else {
            // No query: points in id order, as a scroll would return them.
            let (records, _) = await scroll(from: nil, limit: window, filter: request.filter,
                                            withPayload: request.withPayload, withVector: request.withVector)
            return records.dropFirst(request.offset).map { ScoredPoint(id: $0.id, version: 0, score: 0, payload: $0.payload, vectors: $0.vectors) }
        }
        guard query.count == Int(params.size) else {
            throw .badInput("Vector dimension error: expected dim: \(params.size), got \(query.count)")
        }
        if params.distance == .cosine { quiver_normalize_f32(&query, query.count) }
        var merged: [ScoredPoint] = []
        for shard in shards {
            merged += await shard.search(query, using: request.using, distance: params.distance, filter: request.filter, limit: window,
                                         threshold: request.scoreThreshold, withPayload: request.withPayload, withVector: request.withVector)
        }
        let higherIsBetter = params.distance.higherIsBetter
        merged.sort { a, b in
            a.score != b.score ? (higherIsBetter ? a.score > b.score : a.score < b.score) : a.id < b.id
        }
        return Array(merged.dropFirst(request.offset).prefix(request.limit))
    }
}
