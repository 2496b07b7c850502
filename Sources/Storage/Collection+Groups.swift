public import QuiverJSON
public import QuiverModel

/// Grouped search (`query/groups`, `search/groups`, `recommend/groups`): the query's ranking cut
/// into groups by a payload value. The ranking is read in growing windows until the first
/// `limit` groups are full or every match has been seen, so the groups are those of the
/// complete ranking, on one node or many. Prefetches keep their own limits, as in Qdrant's
/// server (qdrant-client's local mode deepens them to every point).
extension Collection {
    public func queryGroups(_ request: GroupsRequest, consistency: ReadConsistency = .default) async throws(StorageError) -> [PointGroup] {
        let (product, overflow) = request.limit.multipliedReportingOverflow(by: request.groupSize)
        var window = overflow ? Int(Int32.max) : min(max(product, 16), Int(Int32.max))
        while true {
            var search = request.search
            search.limit = window
            search.offset = 0
            search.withPayload = .all
            let points = try await query(search, consistency: consistency)
            var groups: [PointGroup] = []
            var position: [JSONValue: Int] = [:]
            for point in points {
                for id in PointGroup.ids(of: point.payload, at: request.groupBy) {
                    var hit = point
                    hit.payload = request.search.withPayload == .none ? nil : request.search.withPayload.apply(point.payload)
                    if let at = position[id] {
                        if groups[at].hits.count < request.groupSize { groups[at].hits.append(hit) }
                    } else {
                        position[id] = groups.count
                        groups.append(PointGroup(id: id, hits: [hit]))
                    }
                }
            }
            let first = groups.prefix(request.limit)
            let complete = first.count == request.limit && first.allSatisfy { $0.hits.count >= request.groupSize }
            if complete || points.count < window || window >= Int(Int32.max) { return Array(first) }
            window = min(window * 4, Int(Int32.max))
        }
    }
}
