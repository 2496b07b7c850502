public import QuiverModel
public import Storage

/// Points returned by retrieve and scroll, with what the wire format needs to render them.
public struct RecordsResult: Sendable {
    public var records: [PointRecord]
    /// The collection has one unnamed vector: render `vector` as a bare list.
    public var unnamedVector: Bool
    /// Scroll only: the id that starts the next page.
    public var nextPageOffset: PointID?
}

extension QuiverService {
    /// Default page size of scroll, as in Qdrant.
    public static let scrollLimitDefault = 10

    /// Any change to points: upsert, delete, vector and payload updates.
    public func update(_ collectionName: String, _ operation: UpdateOperation, wait: Bool) async throws(ServiceError) -> UpdateResult {
        do {
            return try await toc.collection(collectionName).update(operation, wait: wait)
        } catch {
            throw .storage(error)
        }
    }

    /// `points/batch`: the operations in order, each applied before the next starts; the first
    /// failure stops the batch (earlier operations stay applied, as in Qdrant).
    public func updateBatch(_ collectionName: String, _ operations: [UpdateOperation], wait: Bool) async throws(ServiceError) -> [UpdateResult] {
        var results: [UpdateResult] = []
        for operation in operations { results.append(try await update(collectionName, operation, wait: wait)) }
        return results
    }

    public func retrieve(_ collectionName: String, _ ids: [PointID], withPayload: WithPayload, withVector: WithVector) async throws(ServiceError) -> RecordsResult {
        let collection = try await collection(collectionName)
        let records = await collection.retrieve(ids, withPayload: withPayload, withVector: withVector)
        return RecordsResult(records: records, unnamedVector: await Self.hasUnnamedVector(collection))
    }

    /// One point; not found is a 404, as `GET /collections/{c}/points/{id}` in Qdrant.
    public func point(_ collectionName: String, _ id: PointID) async throws(ServiceError) -> RecordsResult {
        let result = try await retrieve(collectionName, [id], withPayload: .all, withVector: .all)
        guard !result.records.isEmpty else { throw .storage(.notFound("No point with id \(id) found")) }
        return result
    }

    public func scroll(_ collectionName: String, offset: PointID?, limit: Int?, withPayload: WithPayload, withVector: WithVector) async throws(ServiceError) -> RecordsResult {
        let limit = limit ?? Self.scrollLimitDefault
        if limit < 1 {
            var errors = ValidationErrors()
            errors.range("limit", limit, min: 1)
            throw .validation(errors, .body)
        }
        let collection = try await collection(collectionName)
        let (records, next) = await collection.scroll(from: offset, limit: limit, withPayload: withPayload, withVector: withVector)
        return RecordsResult(records: records, unnamedVector: await Self.hasUnnamedVector(collection), nextPageOffset: next)
    }

    public func count(_ collectionName: String) async throws(ServiceError) -> Int {
        await (try collection(collectionName)).count()
    }

    func collection(_ name: String) async throws(ServiceError) -> Collection {
        do {
            return try await toc.collection(name)
        } catch {
            throw .storage(error)
        }
    }

    static func hasUnnamedVector(_ collection: Collection) async -> Bool {
        if case .single = await collection.config.params.vectors { return true }
        return false
    }
}

extension QuiverService {
    public func optimizations(_ collectionName: String) async throws(ServiceError) -> OptimizationsReport {
        await (try collection(collectionName)).optimizations()
    }
}
