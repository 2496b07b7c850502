import DiskIO
public import QuiverModel
import Shard
import Storage

/// A read whose results would need more memory than one request may use
/// (`service.max_request_memory_mb`) is refused with a 400 before it runs, rather than risk the
/// process being killed for want of memory. The need is estimated from what the request asks (its
/// limits, offsets, batch size, group sizes, matrix size, whether vectors and payloads come back),
/// each capped by the number of points stored, and the average size of a stored point's vectors
/// and payload.
extension QuiverService {
    /// What one result row costs besides its vectors: its id, score, version and the containers
    /// around them, in the engine and in the encoded answer.
    static let rowOverheadBytes = 160

    /// A read that would fit even if each payload it returns were this large is let through
    /// without asking the shards what their payloads weigh.
    static let unmeasuredPayloadBytes = 64 << 10

    /// Points sampled in each segment to estimate the payload bytes per point.
    static let payloadSample = 64

    /// The collection's size as the estimate reads it: points, and per point the bytes of its
    /// vectors and (with `payloads`) twice those of its stored payload, which a result holds
    /// decoded and then encoded.
    private func footprint(_ collection: Collection, payloads: Bool = false) async -> (points: Int, vectorBytes: Int, payloadBytes: Int) {
        let sizes = await collection.storedSizes(payloads: payloads ? .sampled(Self.payloadSample) : .none)
        guard sizes.points > 0 else { return (0, 0, 0) }
        return (sizes.points, sizes.vectorBytes / sizes.points, 2 * sizes.payloadBytes / sizes.points)
    }

    private func requireMemory(_ bytes: Double, for what: String) throws(ServiceError) {
        guard let limit = requestMemoryLimit, bytes > Double(limit) else { return }
        let need = bytes >= Double(UInt64.max) ? "more than \(SpaceGuard.size(UInt64.max))" : "about \(SpaceGuard.size(UInt64(bytes)))"
        throw .storage(.badRequest(
            "The results of this \(what) would need \(need) of memory, more than the \(SpaceGuard.size(UInt64(limit))) one request may use "
                + "(service.max_request_memory_mb). Help: lower `limit` (or `group_size`, `sample`), send fewer queries per batch, "
                + "leave vectors or payloads out of the results, or page through the points with scroll."))
    }

    /// Rows of one search (its top level and every prefetch), in bytes; `payloadBytes` counts for
    /// the rows that return payloads.
    private static func searchBytes(_ request: SearchRequest, points: Int, vectorBytes: Int, payloadBytes: Int) -> Double {
        let wanted = request.limit > Int.max - request.offset ? Int.max : request.limit + request.offset
        let rows = Double(min(wanted, points))
        var bytes = rows * Double(rowBytes(request.withVector, vectorBytes, request.withPayload, payloadBytes))
        for prefetch in request.prefetch {
            var inner = prefetch
            inner.withVector = .none
            inner.withPayload = .none
            bytes += searchBytes(inner, points: points, vectorBytes: vectorBytes, payloadBytes: payloadBytes)
        }
        return bytes
    }

    private static func rowBytes(_ withVector: WithVector, _ vectorBytes: Int, _ withPayload: WithPayload, _ payloadBytes: Int) -> Int {
        rowOverheadBytes + (withVector == .none ? 0 : vectorBytes) + (withPayload == .none ? 0 : payloadBytes)
    }

    func checkWorkingMemory(_ searches: [SearchRequest], on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        // Most reads fit whatever the collection holds: those do not ask its shards their size.
        let uncapped = searches.reduce(0.0) { $0 + Self.searchBytes($1, points: .max, vectorBytes: 0, payloadBytes: Self.unmeasuredPayloadBytes) }
        if uncapped <= Double(limit), !searches.contains(where: { $0.withVector != .none }) { return }
        let payloads = searches.contains { $0.withPayload != .none }
        let (points, vectorBytes, payloadBytes) = await footprint(collection, payloads: payloads)
        let bytes = searches.reduce(0.0) { $0 + Self.searchBytes($1, points: points, vectorBytes: vectorBytes, payloadBytes: payloadBytes) }
        try requireMemory(bytes, for: searches.count == 1 ? "query" : "batch of \(searches.count) queries")
    }

    /// `rows` records (of a scroll, a retrieve, or groups), capped by the points stored.
    func checkWorkingMemory(rows wanted: Double, withVector: WithVector, withPayload: WithPayload, for what: String,
                            on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        if withVector == .none, wanted * Double(Self.rowBytes(.none, 0, withPayload, Self.unmeasuredPayloadBytes)) <= Double(limit) { return }
        let (points, vectorBytes, payloadBytes) = await footprint(collection, payloads: withPayload != .none)
        let rows = min(wanted, Double(points))
        try requireMemory(rows * Double(Self.rowBytes(withVector, vectorBytes, withPayload, payloadBytes)), for: what)
    }

    func checkWorkingMemory(matrix request: MatrixRequest, on collection: Collection) async throws(ServiceError) {
        guard let limit = requestMemoryLimit else { return }
        if Double(request.sample) * Double(request.limit) * Double(Self.rowOverheadBytes) <= Double(limit) { return }
        let points = await footprint(collection).points
        let sample = Double(min(request.sample, points))
        let pairs = sample * Double(min(request.limit, points))
        try requireMemory(pairs * Double(Self.rowOverheadBytes), for: "distance matrix")
    }
}
