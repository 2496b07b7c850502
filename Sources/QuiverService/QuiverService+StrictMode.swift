public import QuiverModel
import Shard
import Storage

/// Strict mode: the limits of a collection's `strict_mode_config`, enforced while `enabled` is
/// true. A refused request is a 400 with Qdrant's message and changes nothing.
extension QuiverService {
    /// Runs `checks` against the collection's limits when strict mode is enabled on it.
    func enforceStrictMode(_ collection: Collection,
                           _ checks: (StrictModeConfig, [String: PayloadFieldSchema]) async throws(StrictModeViolation) -> Void) async throws(ServiceError) {
        guard let limits = await collection.config.strictModeConfig?.enforced else { return }
        do {
            try await checks(limits, await collection.payloadSchema)
        } catch {
            throw .storage(.badRequest(error.message))
        }
    }

    /// The `timeout` query parameter of a request to `collectionName` (`max_timeout`).
    public func checkTimeout(_ collectionName: String, _ seconds: Int?) async throws(ServiceError) {
        guard let seconds else { return }
        try await enforceStrictMode(try await collection(collectionName)) { limits, _ throws(StrictModeViolation) in
            try limits.checkTimeout(seconds)
        }
    }

    /// The limits an update is held to: batch sizes, write filters, and the collection's size.
    func checkStrictMode(_ update: PointsUpdate, on collection: Collection) async throws(ServiceError) {
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            try limits.checkFilter(update.filter, schema: schema, update: true)
            let grows: Bool, payloadOnly: Bool
            switch update.operation {
            case .upsert(let points):
                try limits.checkUpdateBatch(points.count, upsert: true)
                try limits.checkVectorSizes(points)
                (grows, payloadOnly) = (true, false)
            case .updateVectors(let points):
                try limits.checkUpdateBatch(points.count, upsert: false)
                try limits.checkVectorSizes(points)
                (grows, payloadOnly) = (true, false)
            case .setPayload, .overwritePayload:
                (grows, payloadOnly) = (true, true)
            case .delete, .deleteVectors, .deletePayload, .clearPayload:
                (grows, payloadOnly) = (false, false)
            }
            if case .delete = update.operation {} else if limits.maxResidentMemoryPercent != nil {
                try limits.checkResidentMemory(toc.quota?.memoryPercent())
            }
            let sizeLimited = limits.maxCollectionPayloadSizeBytes != nil
                || (!payloadOnly && (limits.maxPointsCount != nil || limits.maxCollectionVectorSizeBytes != nil))
            guard grows, sizeLimited else { return }
            let sizes = await collection.storedSizes(payloads: limits.maxCollectionPayloadSizeBytes != nil ? .exact : .none)
            try limits.checkCollectionSize(points: sizes.points, vectorBytes: sizes.vectorBytes, payloadBytes: sizes.payloadBytes,
                                           payloadOnly: payloadOnly)
        }
    }

    /// The limits a search is held to: `limit`, the filter, `exact` and the search parameters.
    func checkStrictMode(_ search: SearchRequest, on collection: Collection) async throws(ServiceError) {
        try await enforceStrictMode(collection) { limits, schema throws(StrictModeViolation) in
            func check(_ level: SearchRequest) throws(StrictModeViolation) {
                try limits.checkLimit(level.limit)
                try limits.checkFilter(level.filter, schema: schema, update: false)
                try limits.checkSearchParams(level.params)
                for prefetch in level.prefetch { try check(prefetch) }
            }
            try check(search)
        }
    }

    /// `search_max_batchsize` of a batch of searches.
    public func checkSearchBatch(_ collectionName: String, count: Int) async throws(ServiceError) {
        try await enforceStrictMode(try await collection(collectionName)) { limits, _ throws(StrictModeViolation) in
            try limits.checkBatch(count)
        }
    }
}
