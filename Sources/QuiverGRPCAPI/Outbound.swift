import QuiverJSON
import QuiverModel
import QuiverService
import SwiftProtobuf

/// Answers leave as protobuf messages: every model type a response carries is turned into its
/// `qdrant.*` message here, the one place for that direction.
enum Outbound {
    static func value(_ json: JSONValue) -> Qdrant_Value {
        var value = Qdrant_Value()
        switch json {
        case .null: value.nullValue = .nullValue
        case .bool(let b): value.boolValue = b
        case .int(let i): value.integerValue = i
        case .uint(let u): if let i = Int64(exactly: u) { value.integerValue = i } else { value.doubleValue = Double(u) }
        case .double(let d): value.doubleValue = d
        case .string(let s): value.stringValue = s
        case .array(let a): value.listValue = Qdrant_ListValue.with { $0.values = a.map(Self.value) }
        case .object(let o): value.structValue = Qdrant_Struct.with { $0.fields = fields(o) }
        }
        return value
    }

    static func fields(_ object: JSONObject?) -> [String: Qdrant_Value] {
        guard let object else { return [:] }
        var fields: [String: Qdrant_Value] = [:]
        fields.reserveCapacity(object.count)
        for (key, json) in object { fields[key] = value(json) }
        return fields
    }

    static func pointID(_ id: PointID) -> Qdrant_PointId {
        var out = Qdrant_PointId()
        switch id {
        case .number(let n): out.num = n
        case .uuid: out.uuid = id.description
        }
        return out
    }

    /// A datetime the REST API writes as text, as a protobuf timestamp.
    static func timestamp(_ text: String) -> Google_Protobuf_Timestamp? {
        guard let micros = Datetime.parse(text) else { return nil }
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        return Google_Protobuf_Timestamp.with {
            $0.seconds = seconds
            $0.nanos = Int32((micros - seconds * 1_000_000) * 1000)
        }
    }

    static func updateResult(_ result: UpdateResult) -> Qdrant_UpdateResult {
        var out = Qdrant_UpdateResult()
        if let id = result.operationId { out.operationID = id }
        switch result.status {
        case .acknowledged: out.status = .acknowledged
        case .completed: out.status = .completed
        case .waitTimeout: out.status = .waitTimeout
        }
        return out
    }

    static func dense(_ data: [Float]) -> Qdrant_VectorOutput {
        var out = Qdrant_VectorOutput()
        out.dense = Qdrant_DenseVector.with { $0.data = data }
        return out
    }

    /// A point's vectors: one unnamed vector as `vector`, named ones (or none) as `vectors`.
    static func vectors(dense: [String: [Float]]?, sparse: [String: SparseVector]?, multi: [String: MultiVector]?,
                        unnamedVector: Bool) -> Qdrant_VectorsOutput? {
        guard dense != nil || sparse != nil || multi != nil else { return nil }
        var named: [String: Qdrant_VectorOutput] = [:]
        for (name, data) in dense ?? [:] { named[name] = Self.dense(data) }
        for (name, vector) in sparse ?? [:] {
            var out = Qdrant_VectorOutput()
            out.sparse = Qdrant_SparseVector.with { $0.indices = vector.indices; $0.values = vector.values }
            named[name] = out
        }
        for (name, vector) in multi ?? [:] {
            var out = Qdrant_VectorOutput()
            out.multiDense = Qdrant_MultiDenseVector.with { $0.vectors = vector.rows.map { row in Qdrant_DenseVector.with { $0.data = row } } }
            named[name] = out
        }
        var out = Qdrant_VectorsOutput()
        if unnamedVector, named.count == 1, let only = named[""] {
            out.vector = only
        } else {
            out.vectors = Qdrant_NamedVectorsOutput.with { $0.vectors = named }
        }
        return out
    }

    static func orderValue(_ json: JSONValue?) -> Qdrant_OrderValue? {
        switch json {
        case .int(let i): Qdrant_OrderValue.with { $0.int = i }
        case .uint(let u): Qdrant_OrderValue.with { if let i = Int64(exactly: u) { $0.int = i } else { $0.float = Double(u) } }
        case .double(let d): Qdrant_OrderValue.with { $0.float = d }
        default: nil
        }
    }

    static func scoredPoint(_ point: ScoredPoint, unnamedVector: Bool) -> Qdrant_ScoredPoint {
        var out = Qdrant_ScoredPoint()
        out.id = pointID(point.id)
        out.score = point.score
        out.version = point.version
        out.payload = fields(point.payload)
        if let vectors = vectors(dense: point.vectors, sparse: point.sparse, multi: point.multi, unnamedVector: unnamedVector) {
            out.vectors = vectors
        }
        if let order = orderValue(point.orderValue) { out.orderValue = order }
        return out
    }

    static func scoredPoints(_ result: SearchResult) -> [Qdrant_ScoredPoint] {
        result.points.map { scoredPoint($0, unnamedVector: result.unnamedVector) }
    }

    static func retrievedPoint(_ record: PointRecord, unnamedVector: Bool) -> Qdrant_RetrievedPoint {
        var out = Qdrant_RetrievedPoint()
        out.id = pointID(record.id)
        out.payload = fields(record.payload)
        if let vectors = vectors(dense: record.vectors, sparse: record.sparse, multi: record.multi, unnamedVector: unnamedVector) {
            out.vectors = vectors
        }
        if let order = orderValue(record.orderValue) { out.orderValue = order }
        return out
    }

    static func groupID(_ json: JSONValue) -> Qdrant_GroupId {
        var out = Qdrant_GroupId()
        switch json {
        case .uint(let u): out.unsignedValue = u
        case .int(let i): if i >= 0 { out.unsignedValue = UInt64(i) } else { out.integerValue = i }
        case .string(let s): out.stringValue = s
        default: out.stringValue = JSONWriter.string(json)
        }
        return out
    }

    static func groups(_ groups: [PointGroup], unnamedVector: Bool) -> Qdrant_GroupsResult {
        Qdrant_GroupsResult.with {
            $0.groups = groups.map { group in
                Qdrant_PointGroup.with {
                    $0.id = groupID(group.id)
                    $0.hits = group.hits.map { scoredPoint($0, unnamedVector: unnamedVector) }
                    if let lookup = group.lookup { $0.lookup = retrievedPoint(lookup, unnamedVector: unnamedVector) }
                }
            }
        }
    }

    static func facetValue(_ json: JSONValue) -> Qdrant_FacetValue {
        var out = Qdrant_FacetValue()
        switch json {
        case .int(let i): out.integerValue = i
        case .uint(let u): out.integerValue = Int64(clamping: u)
        case .bool(let b): out.boolValue = b
        case .string(let s): out.stringValue = s
        default: out.stringValue = JSONWriter.string(json)
        }
        return out
    }
}
