import QuiverModel

/// How many points of a segment a filter may pass: at least `min`, about `expected`, at most
/// `max`. Indexed conditions give their candidate counts, others the whole range; combinations
/// assume independent conditions, as Qdrant's estimator does.
struct Cardinality: Equatable {
    var min: Int
    var expected: Int
    var max: Int

    static func all(_ total: Int) -> Cardinality { Cardinality(min: total, expected: total, max: total) }
    static func unknown(_ total: Int) -> Cardinality { Cardinality(min: 0, expected: total / 2, max: total) }

    func inverted(_ total: Int) -> Cardinality {
        Cardinality(min: total - max, expected: total - expected, max: total - min)
    }

    /// Every part must pass.
    static func all(of parts: [Cardinality], total: Int) -> Cardinality {
        guard total > 0 else { return Cardinality(min: 0, expected: 0, max: 0) }
        var result = Cardinality.all(total)
        var share = 1.0
        var missing = 0
        for part in parts {
            result.max = Swift.min(result.max, part.max)
            missing += total - part.min
            share *= Double(part.expected) / Double(total)
        }
        result.min = Swift.max(0, total - missing)
        result.expected = Swift.min(result.max, Swift.max(result.min, Int((share * Double(total)).rounded())))
        return result
    }

    /// At least one part must pass.
    static func any(of parts: [Cardinality], total: Int) -> Cardinality {
        guard total > 0, !parts.isEmpty else { return Cardinality(min: 0, expected: 0, max: 0) }
        var missShare = 1.0
        for part in parts { missShare *= 1 - Double(part.expected) / Double(total) }
        let min = parts.map(\.min).max()!
        let max = Swift.min(total, parts.reduce(0) { $0 + $1.max })
        return Cardinality(min: min, expected: Swift.min(max, Swift.max(min, Int(((1 - missShare) * Double(total)).rounded()))), max: max)
    }
}

/// How one segment answers a vector search with a filter.
enum SearchPlan: Equatable {
    /// Score every point (checking the filter only for points good enough to enter the results).
    case fullScan
    /// Score only the points a payload index proposes (checked against the filter).
    case candidates([Int32])
    /// Traverse the segment's vector index, checking the filter on the way (issue 5's HNSW).
    case vectorIndex
}

extension SegmentEntry {
    /// The estimated number of live points passing `filter`.
    func cardinality(_ filter: Filter) -> Cardinality {
        let total = data.liveCount
        let indexes = appendable?.indexes ?? immutable!.indexes
        func estimate(_ condition: Condition) -> Cardinality {
            switch condition {
            case .field(let field):
                guard let found = indexes[field.key]?.candidates(field) else { return .unknown(total) }
                // Candidates are a superset (and may include deleted points): an upper bound.
                let max = Swift.min(total, found.count)
                return Cardinality(min: 0, expected: max, max: max)
            case .hasID(let ids):
                let max = Swift.min(total, ids.count)
                return Cardinality(min: 0, expected: max, max: max)
            case .filter(let inner):
                return cardinality(inner)
            default:
                return .unknown(total)
            }
        }
        var parts: [Cardinality] = []
        if let must = filter.must { parts += must.map(estimate) }
        if let mustNot = filter.mustNot { parts += mustNot.map { estimate($0).inverted(total) } }
        if let should = filter.should, !should.isEmpty { parts.append(.any(of: should.map(estimate), total: total)) }
        if let minShould = filter.minShould, !minShould.conditions.isEmpty {
            var any = Cardinality.any(of: minShould.conditions.map(estimate), total: total)
            if minShould.minCount > 1 { any.min = 0 }
            parts.append(any)
        }
        return .all(of: parts, total: total)
    }

    /// The plan Qdrant's per-segment planner would pick: without a filter, the vector index if the
    /// segment has one; with a filter, the payload index's candidates when at most
    /// `fullScanThreshold` of them (or when there is no vector index), else the vector index when
    /// more than `fullScanThreshold` points are expected to pass. `exact` always scans.
    func plan(_ filter: Filter?, vectorIndexed: Bool, exact: Bool, fullScanThreshold: Int) -> SearchPlan {
        guard let filter else { return vectorIndexed && !exact ? .vectorIndex : .fullScan }
        let candidates = candidates(filter)
        if vectorIndexed && !exact, (candidates?.count ?? .max) > fullScanThreshold,
           cardinality(filter).expected > fullScanThreshold {
            return .vectorIndex
        }
        return candidates.map(SearchPlan.candidates) ?? .fullScan
    }
}
