/// Filtered search by ACORN-1 (Patel et al., 2024), as Qdrant offers it with `params.acorn`: on
/// level 0 only points the filter accepts are scored and followed; a neighbour the filter rejects
/// is looked through instead, its own neighbours taken as if they were the point's (2 hops), so
/// the walk keeps moving through the matching points when few of them are linked directly.
/// Unlike ACORN-1, while fewer than `k` matches are found, a step that finds no match within two
/// hops goes on through the rejected neighbours, so a filter whose matches lie away from the
/// query's region (a filter correlated with the clusters) does not end the walk where it entered.
extension HNSWGraph {
    /// The `k` nearest points that `filter` accepts, nearest first; at each step up to `m0`
    /// accepted direct neighbours, and `m0` more from each rejected one's links.
    @_specialize(exported: true, where S == FloatScorer, F == LivePoints)
    @_specialize(exported: true, where S == QuantizedScorer, F == LivePoints)
    public func searchACORN<S: QueryScorer, F: PointFilter>(_ scorer: S, k: Int, ef: Int, filter: F,
                                                            context: SearchContext) -> [Neighbor] {
        guard count > 0, maxLevel >= 0, k > 0 else { return [] }
        // The levels above are only a way in, walked as `search` walks them.
        let current = descend(scorer)
        let ef = max(ef, k)
        let visited = context.visited, expanded = context.expanded
        context.begin(at: current, accepted: filter.accepts(current.point))
        expanded.reset()
        let stride = level0Capacity + 1
        while !context.candidates.isEmpty {
            let nearest = context.candidates.pop()
            if context.results.count >= ef && nearest.distance > context.results.top.distance { break }
            context.toScore.removeAll(keepingCapacity: true)
            context.toExpand.removeAll(keepingCapacity: true)
            let block = level0 + Int(nearest.point) * stride
            for i in 0..<Int(block[0]) {
                let link = block[1 + i]
                guard visited.insert(link) else { continue }
                if filter.accepts(link) {
                    context.toScore.append(link)
                    if context.toScore.count >= m0 { break }
                } else {
                    context.toExpand.append(link)
                }
            }
            for hop in context.toExpand {
                let limit = context.toScore.count + m0
                let second = level0 + Int(hop) * stride
                for i in 0..<Int(second[0]) {
                    let link = second[1 + i]
                    guard !visited.contains(link), expanded.insert(link), filter.accepts(link) else { continue }
                    _ = visited.insert(link)
                    context.toScore.append(link)
                    if context.toScore.count >= limit { break }
                }
            }
            if context.toScore.isEmpty && context.results.count < k {
                // No match within two hops and fewer than `k` found: walk on through the rejected
                // neighbours (scored, never returned), as the plain search does, until matches are
                // reached; otherwise a query whose region holds no match would stop where it entered.
                for point in context.toExpand { context.candidates.push(Neighbor(distance: scorer.distance(point), point: point)) }
                continue
            }
            for point in context.toScore { scorer.prefetch(point) }
            for point in context.toScore {
                let d = scorer.distance(point)
                if context.results.count < ef || d < context.results.top.distance {
                    context.candidates.push(Neighbor(distance: d, point: point))
                    context.results.push(Neighbor(distance: d, point: point), keeping: ef)
                }
            }
        }
        return context.nearestResults(k)
    }
}
