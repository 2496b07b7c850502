extension LocalShard {
    /// What the shard stores: live points, bytes of vector storage (deleted points included until
    /// the optimizer drops them), and the bytes of the live points' payloads as `payloads` asks.
    public func storedSizes(payloads: PayloadSizing) -> StoredSizes {
        var sizes = StoredSizes(points: segments.liveCount)
        for entry in segments.entries {
            let data = entry.data
            sizes.vectorBytes += data.vectorStorageBytes
            switch payloads {
            case .none:
                continue
            case .exact:
                for offset in 0..<data.totalCount where data.isLive(at: offset) {
                    sizes.payloadBytes += data.payloadBytes(at: offset)?.count ?? 0
                }
            case .sampled(let perSegment):
                // The first live point of each of `perSegment` equal stretches stands for them all
                // (the first of each stretch alone could fall on deleted points every time).
                let step = max(1, data.totalCount / max(1, perSegment))
                var sampled = 0, bytes = 0
                for start in stride(from: 0, to: data.totalCount, by: step) {
                    guard let offset = (start..<min(start + step, data.totalCount)).first(where: { data.isLive(at: $0) }) else { continue }
                    sampled += 1
                    bytes += data.payloadBytes(at: offset)?.count ?? 0
                }
                if sampled > 0 { sizes.payloadBytes += Int(Double(bytes) / Double(sampled) * Double(data.liveCount)) }
            }
        }
        return sizes
    }
}

/// How ``LocalShard/storedSizes(payloads:)`` counts payload bytes.
public enum PayloadSizing: Sendable, Equatable {
    /// Not at all (0).
    case none
    /// Every live point's payload length (reads them all).
    case exact
    /// Estimated from about this many evenly spread points of each segment.
    case sampled(Int)
}

/// Stored sizes of a shard or collection (``LocalShard/storedSizes(payloads:)``).
public struct StoredSizes: Sendable, Equatable {
    public var points: Int
    public var vectorBytes = 0
    public var payloadBytes = 0

    public init(points: Int = 0) { self.points = points }
}
