import CVectorKernels
public import QuiverModel
import Shard

/// Maximal marginal relevance (`{"nearest": …, "mmr": …}`): the nearest candidates, re-ranked
/// so each next point is relevant to the query and unlike the points picked before it, with the
/// similarities the engine compares (dot product for Dot and Cosine, negated distances for Euclid
/// and Manhattan, `max_sim` for multivectors, a sparse dot product with no shared dimension as 0).
/// Points keep their search scores; the order is the re-ranking's.
extension Collection {
    func searchMMR(_ request: SearchRequest, _ mmr: MMR, consistency: ReadConsistency) async throws(StorageError) -> [ScoredPoint] {
        var candidates = request
        candidates.mmr = nil
        candidates.limit = mmr.candidatesLimit ?? request.limit
        candidates.offset = 0
        candidates.withVector = switch request.withVector {
        case .none: .named([request.using])
        case .named(let names): .named(names + [request.using])
        case .all: .all
        }
        let found = try await search(candidates, consistency: consistency)
        guard !found.isEmpty, let query = request.query else { return [] }
        let distance = config.params.vectors.all[request.using]?.distance
        let vectors = found.map { Self.stored($0, request.using) }
        let queryVector = Self.normalizedForCosine(query, distance)
        let similarity = Self.similarity(distance)
        let relevance = vectors.map { similarity(queryVector, $0) }
        let lambda = 1 - (mmr.diversity ?? 0.5)
        // As Qdrant's core: the pending candidates in a list whose picked element is replaced by
        // the last one, and the last of equal maxima chosen.
        var pending = Array(found.indices)
        func lastArgmax(_ values: [Float]) -> Int {
            var best = 0
            for i in values.indices where values[i] >= values[best] { best = i }
            return best
        }
        func swapRemove(_ position: Int) -> Int {
            let taken = pending[position]
            pending[position] = pending[pending.count - 1]
            pending.removeLast()
            return taken
        }
        var selected = [swapRemove(lastArgmax(pending.map { relevance[$0] }))]
        var nearestPicked = [Float](repeating: -.infinity, count: found.count)
        let wanted = request.offset + request.limit
        while selected.count < wanted, !pending.isEmpty {
            let last = selected[selected.count - 1]
            for candidate in pending { nearestPicked[candidate] = max(nearestPicked[candidate], similarity(vectors[candidate], vectors[last])) }
            let scores = pending.map { lambda * relevance[$0] - (1 - lambda) * nearestPicked[$0] }
            if scores.allSatisfy({ $0 == -.infinity }) { break }
            selected.append(swapRemove(lastArgmax(scores)))
        }
        return selected.dropFirst(request.offset).map { Self.trimmed(found[$0], to: request.withVector) }
    }

    /// The point's vector `name` as a query input.
    static func stored(_ point: ScoredPoint, _ name: String) -> QueryInput? {
        if let dense = point.vectors?[name] { return .vector(dense) }
        if let sparse = point.sparse?[name] { return .sparse(sparse) }
        return point.multi?[name].map(QueryInput.multi)
    }

    static func normalizedForCosine(_ query: QueryInput, _ distance: Distance?) -> QueryInput {
        guard distance == .cosine else { return query }
        func normalized(_ row: [Float]) -> [Float] {
            var row = row
            quiver_normalize_f32(&row, row.count)
            return row
        }
        switch query {
        case .vector(let vector): return .vector(normalized(vector))
        case .multi(let vector): return .multi(vector.mapRows(normalized))
        default: return query
        }
    }

    /// Similarity as the engine compares it, higher closer.
    static func similarity(_ distance: Distance?) -> (QueryInput?, QueryInput?) -> Float {
        let maxSim = MaxSim(distance ?? .dot)
        return { a, b in
            switch (a, b) {
            case (.vector(let x)?, .vector(let y)?) where x.count == y.count:
                return x.withUnsafeBufferPointer { p in y.withUnsafeBufferPointer { maxSim.similarity(p.baseAddress!, $0.baseAddress!, x.count) } }
            case (.sparse(let x)?, .sparse(let y)?):
                return x.dot(y) ?? 0
            case (.multi(let x)?, .multi(let y)?):
                return y.flat.withUnsafeBufferPointer { maxSim.score(x, $0) }
            case (.vector(let x)?, .multi(let y)?):
                return y.flat.withUnsafeBufferPointer { maxSim.score(MultiVector(dimension: x.count, flat: x), $0) }
            default:
                return -.infinity
            }
        }
    }

    /// The point with only the vectors `withVector` asks for.
    static func trimmed(_ point: ScoredPoint, to withVector: WithVector) -> ScoredPoint {
        var point = point
        guard withVector != .none else {
            (point.vectors, point.sparse, point.multi) = (nil, nil, nil)
            return point
        }
        point.vectors = point.vectors?.filter { withVector.includes($0.key) }
        point.sparse = point.sparse?.filter { withVector.includes($0.key) }
        point.multi = point.multi?.filter { withVector.includes($0.key) }
        return point
    }
}
