public import QuiverModel

/// Search on sparse vectors: the dot product over shared dimensions, from the inverted index of
/// an immutable segment or the vectors of an appendable one. A point that shares no dimension
/// with the query is no match (its score is undefined), as in Qdrant.
extension LocalShard {
    /// The best `limit` live points passing `filter` by dot product with `query` (already weighted
    /// by idf when the vector has that modifier); scores at or above `threshold`.
    public func searchSparse(_ query: SparseVector, using name: String, filter: Filter?, limit: Int, threshold: Float?,
                             withPayload: WithPayload, withVector: WithVector) -> [ScoredPoint] {
        guard limit > 0, !query.isEmpty else { return [] }
        var best = TopK(limit: limit)
        for (segment, entry) in segments.entries.enumerated() {
            entry.forEachSparseScore(name, query) { offset, score in
                if let threshold, score < threshold { return }
                guard best.admits(score) else { return }
                if let filter, !entry.matches(filter, at: offset) { return }
                best.insert(Candidate(goodness: score, score: score, id: entry.data.id(at: offset), segment: segment, offset: offset))
            }
        }
        return best.sorted().map { candidate in
            let entry = segments.entries[candidate.segment]
            let record = entry.record(at: candidate.offset, withPayload: withPayload, withVector: withVector)
            return ScoredPoint(record, score: candidate.score, version: entry.version(at: candidate.offset))
        }
    }

    /// How many live points have sparse vector `name`, and how many of them have each of
    /// `indices` (for the `idf` modifier); only points passing `filter` count.
    public func sparseStatistics(_ name: String, indices: [UInt32], filter: Filter? = nil) -> SparseStatistics {
        var result = SparseStatistics()
        let wanted = Set(indices)
        for entry in segments.entries {
            let data = entry.data
            let counts = { (offset: Int) in data.isLive(at: offset) && (filter.map { entry.matches($0, at: offset) } ?? true) }
            if let appendable = entry.appendable {
                // A deleted point has no sparse vector left: without a filter, every one counts.
                guard let column = appendable.sparse[name] else { continue }
                if filter == nil {
                    result.vectors += column.vectors.count
                } else {
                    for offset in column.vectors.keys where counts(offset) { result.vectors += 1 }
                }
                for index in wanted {
                    guard let postings = column.postings[index] else { continue }
                    let count = filter == nil ? postings.count : postings.keys.reduce(0) { $0 + (counts($1) ? 1 : 0) }
                    if count > 0 { result.documentFrequency[index, default: 0] += count }
                }
            } else if let column = entry.immutable!.sparseColumns[name] {
                if filter == nil {
                    result.vectors += column.liveVectors
                } else {
                    for offset in column.has.indices where column.has[offset] && counts(offset) { result.vectors += 1 }
                }
                for index in wanted {
                    var count = 0
                    column.index.forEachPosting(of: index) { offset, _ in if counts(offset) { count += 1 } }
                    if count > 0 { result.documentFrequency[index, default: 0] += count }
                }
            }
        }
        return result
    }
}

extension SegmentEntry {
    /// Calls `body` with the offset and score of each live point whose vector `name` shares a
    /// dimension with `query`.
    func forEachSparseScore(_ name: String, _ query: SparseVector, _ body: (Int, Float) -> Void) {
        if let appendable {
            guard let column = appendable.sparse[name] else { return }
            var scores: [Int: Float] = [:]
            for (index, weight) in zip(query.indices, query.values) {
                for (offset, value) in column.postings[index] ?? [:] { scores[offset, default: 0] += weight * value }
            }
            for (offset, score) in scores where appendable.isLive(at: offset) { body(offset, score) }
            return
        }
        let segment = immutable!
        guard let column = segment.sparseColumns[name] else { return }
        var scores = SparseAccumulator(count: segment.totalCount)
        for (index, weight) in zip(query.indices, query.values) {
            column.index.forEachPosting(of: index) { offset, value in scores.add(offset, weight * value) }
        }
        for offset in scores.touched.sorted() where segment.isLive(at: offset) { body(offset, scores.score(offset)) }
    }
}

/// A stored vector as a scoring function sees it.
public enum StoredVector {
    case dense(UnsafeBufferPointer<Float>)
    case sparse(SparseVector)
    /// A multivector's inner vectors, one after another.
    case multi(UnsafeBufferPointer<Float>)
}

extension LocalShard {
    /// The best `limit` live points that have vector `name` and pass `filter`, by `score` of
    /// their vector (higher is better; at or above `threshold`): the exact scan behind
    /// recommend, discover and context queries, and multivector search.
    public func searchEach(_ name: String, filter: Filter?, limit: Int, threshold: Float?, withPayload: WithPayload,
                           withVector: WithVector, score: @Sendable (StoredVector) -> Float) -> [ScoredPoint] {
        guard limit > 0 else { return [] }
        var best = TopK(limit: limit)
        let dimension = segments.dimensions[name]
        for (segment, entry) in segments.entries.enumerated() {
            func consider(_ offset: Int, _ value: Float) {
                if let threshold, value < threshold { return }
                guard best.admits(value) else { return }
                if let filter, !entry.matches(filter, at: offset) { return }
                best.insert(Candidate(goodness: value, score: value, id: entry.data.id(at: offset), segment: segment, offset: offset))
            }
            if let dimension {
                entry.forEachVector(name) { offset, vector in
                    consider(offset, score(.dense(UnsafeBufferPointer(start: vector, count: dimension))))
                }
            } else if let appendable = entry.appendable {
                for (offset, vector) in appendable.sparse[name]?.vectors ?? [:] where appendable.isLive(at: offset) {
                    consider(offset, score(.sparse(vector)))
                }
                entry.forEachMultiVector(name) { consider($0, score(.multi($1))) }
            } else if entry.immutable!.multiColumns[name] != nil {
                entry.forEachMultiVector(name) { consider($0, score(.multi($1))) }
            } else if let column = entry.immutable!.sparseColumns[name] {
                let data = entry.data
                for offset in column.has.indices where column.has[offset] && data.isLive(at: offset) {
                    if let vector = column.vector(at: offset) { consider(offset, score(.sparse(vector))) }
                }
            }
        }
        return best.sorted().map { candidate in
            let entry = segments.entries[candidate.segment]
            let record = entry.record(at: candidate.offset, withPayload: withPayload, withVector: withVector)
            return ScoredPoint(record, score: candidate.score, version: entry.version(at: candidate.offset))
        }
    }
}
