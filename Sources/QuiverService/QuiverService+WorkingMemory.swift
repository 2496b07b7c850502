import DiskIO
public import QuiverModel
import Shard
import Storage

/// A read whose results would need more memory than one request may use
/// (`service.max_request_memory_mb`) is refused with a 400 before it runs, rather than risk the
/// process being killed for want of memory. The need is estimated from what the request asks (its
/// limits, offsets, batch size, group sizes, matrix size, whether vectors come back), each capped
/// by the number of points stored, and the average size of a stored point's vectors.
extension QuiverService {
    /// What one result row costs besides its vectors: its id, score, version and the containers
    /// around them, in the engine and in the encoded answer.
    static let rowOverheadBytes = 160

    /// The collection's size as the estimate reads it: points, and bytes of vectors per point.
    private func footprint(_ collection: Collection) async -> (points: Int, vectorBytes: Int) {
        let sizes = await collection.storedSizes(payloads: false)
        return (sizes.points, sizes.points > 0 ? sizes.vectorBytes / sizes.points : 0)
    }

    private func requireMemory(_ bytes: Double, for what: String) throws(ServiceError) {
        guard let limit = requestMemoryLimit, bytes > Double(limit) else { return }
        let need = bytes >= Double(UInt64.max) ? "more than \(SpaceGuard.size(UInt64.max))" : "about \(SpaceGuard.size(UInt64(bytes)))"
        throw .storage(.badRequest(
            "The results of this \(what) would need \(need) of memory, more than the \(SpaceGuard.size(UInt64(limit))) one request may use "
                + "(service.max_request_memory_mb). Help: lower `limit` (or `group_size`, `sample`), send fewer queries per batch, "
                + "leave vectors out of the results, or page through the points with scroll."))
    }

    /// Rows of one search (its top level and every prefetch), in bytes.
    private static func searchBytes(_ request: SearchRequest, points: Int, vectorBytes: Int) -> Double {
        let wanted = request.limit > Int.max - request.offset ? Int.max : request.limit + request.offset
        let rows = Double(min(wanted, points))
        var bytes = rows * Double(rowOverheadBytes + (request.withVector == .none ? 0 : vectorBytes))
        for prefetch in request.prefetch {
            var inner = prefetch
            inner.withVector = .none
            bytes += searchBytes(inner, points: points, vectorBytes: vectorBytes)
        }
        return bytes
    }

    func checkWorkingMemory(_ searches: [SearchRequest], on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        // Most reads fit whatever the collection holds: those do not ask its shards their size.
        let uncapped = searches.reduce(0.0) { $0 + Self.searchBytes($1, points: .max, vectorBytes: 0) }
        if uncapped <= Double(limit), !searches.contains(where: { $0.withVector != .none }) { return }
        let (points, vectorBytes) = await footprint(collection)
        let bytes = searches.reduce(0.0) { $0 + Self.searchBytes($1, points: points, vectorBytes: vectorBytes) }
        try requireMemory(bytes, for: searches.count == 1 ? "query" : "batch of \(searches.count) queries")
    }

    /// `rows` records (of a scroll, a retrieve, or groups), capped by the points stored.
    func checkWorkingMemory(rows wanted: Double, withVector: WithVector, for what: String, on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        if withVector == .none, wanted * Double(Self.rowOverheadBytes) <= Double(limit) { return }
        let (points, vectorBytes) = await footprint(collection)
        let rows = min(wanted, Double(points))
        try requireMemory(rows * Double(Self.rowOverheadBytes + (withVector == .none ? 0 : vectorBytes)), for: what)
    }

    func checkWorkingMemory(matrix request: MatrixRequest, on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        if Double(request.sample) * Double(request.limit) * Double(Self.rowOverheadBytes) <= Double(limit) { return }
        let (points, _) = await footprint(collection)
        let sample = Double(min(request.sample, points))
        let pairs = sample * Double(min(request.limit, points))
        try requireMemory(pairs * Double(Self.rowOverheadBytes), for: "distance matrix")
    }
}
