import Foundation
import QuiverJSON
import SwiftProtobuf

/// Requests arrive as protobuf messages and are read by the same decoders as REST bodies: each
/// message is turned into the JSON its REST counterpart would carry (`Inbound`), so both APIs accept
/// and reject exactly the same things with the same messages. This file holds the shapes that many
/// requests share: values, ids, filters, vectors and selectors.
enum Inbound {
    static func json(_ value: Qdrant_Value) -> JSONValue {
        switch value.kind {
        case nil, .nullValue: .null
        case .doubleValue(let d): .double(d)
        case .integerValue(let i): .int(i)
        case .stringValue(let s): .string(s)
        case .boolValue(let b): .bool(b)
        case .structValue(let s): json(s.fields)
        case .listValue(let l): .array(l.values.map(json))
        }
    }

    static func json(_ fields: [String: Qdrant_Value]) -> JSONValue {
        .object(JSONObject(fields.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
    }

    static func json(_ id: Qdrant_PointId) -> JSONValue {
        switch id.pointIDOptions {
        case .num(let n): .unsigned(n)
        case .uuid(let s): .string(s)
        case nil: .null
        }
    }

    /// Builds a JSON object from the pairs whose value is present.
    static func object(_ pairs: [(String, JSONValue?)]) -> JSONValue {
        .object(JSONObject(pairs.compactMap { key, value in value.map { (key, $0) } }))
    }

    static func floats(_ values: [Float]) -> JSONValue {
        .array(values.map { .double(Double($0)) })
    }

    static func uints<T: BinaryInteger>(_ values: [T]) -> JSONValue {
        .array(values.map { .unsigned(UInt64($0)) })
    }

    /// RFC 3339 in UTC with the timestamp's own precision, as the REST API accepts datetimes.
    static func datetime(_ timestamp: Google_Protobuf_Timestamp) -> JSONValue {
        let date = Date(timeIntervalSince1970: TimeInterval(timestamp.seconds))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
        if timestamp.nanos != 0 {
            var fraction = String(format: "%09d", timestamp.nanos)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return .string(text + "Z")
    }

    // MARK: Filters

    static func json(_ filter: Qdrant_Filter) -> JSONValue {
        var object = JSONObject()
        if !filter.should.isEmpty { object["should"] = .array(filter.should.map(json)) }
        if !filter.must.isEmpty { object["must"] = .array(filter.must.map(json)) }
        if !filter.mustNot.isEmpty { object["must_not"] = .array(filter.mustNot.map(json)) }
        if filter.hasMinShould {
            object["min_should"] = ["conditions": .array(filter.minShould.conditions.map(json)), "min_count": .unsigned(filter.minShould.minCount)]
        }
        return .object(object)
    }

    static func json(_ condition: Qdrant_Condition) -> JSONValue {
        switch condition.conditionOneOf {
        case nil: return [:]
        case .field(let field): return json(field)
        case .isEmpty(let c): return ["is_empty": ["key": .string(c.key)]]
        case .isNull(let c): return ["is_null": ["key": .string(c.key)]]
        case .hasID_p(let c): return ["has_id": .array(c.hasID_p.map(json))]
        case .filter(let f): return json(f)
        case .nested(let n): return ["nested": ["key": .string(n.key), "filter": json(n.filter)]]
        case .hasVector_p(let c): return ["has_vector": .string(c.hasVector_p)]
        case .slice(let s): return ["slice": ["total": .unsigned(UInt64(s.total)), "index": .unsigned(UInt64(s.index))]]
        }
    }

    static func json(_ field: Qdrant_FieldCondition) -> JSONValue {
        var object = JSONObject([("key", .string(field.key))])
        if field.hasMatch { object["match"] = json(field.match) }
        if field.hasRange {
            let r = field.range
            object["range"] = Self.object([("lt", r.hasLt ? .double(r.lt) : nil), ("gt", r.hasGt ? .double(r.gt) : nil),
                                           ("gte", r.hasGte ? .double(r.gte) : nil), ("lte", r.hasLte ? .double(r.lte) : nil)])
        }
        if field.hasDatetimeRange {
            let r = field.datetimeRange
            object["range"] = Self.object([("lt", r.hasLt ? datetime(r.lt) : nil), ("gt", r.hasGt ? datetime(r.gt) : nil),
                                           ("gte", r.hasGte ? datetime(r.gte) : nil), ("lte", r.hasLte ? datetime(r.lte) : nil)])
        }
        if field.hasGeoBoundingBox {
            object["geo_bounding_box"] = ["top_left": json(field.geoBoundingBox.topLeft), "bottom_right": json(field.geoBoundingBox.bottomRight)]
        }
        if field.hasGeoRadius {
            object["geo_radius"] = ["center": json(field.geoRadius.center), "radius": .double(Double(field.geoRadius.radius))]
        }
        if field.hasGeoPolygon {
            object["geo_polygon"] = ["exterior": json(field.geoPolygon.exterior), "interiors": .array(field.geoPolygon.interiors.map(json))]
        }
        if field.hasValuesCount {
            let r = field.valuesCount
            object["values_count"] = Self.object([("lt", r.hasLt ? .unsigned(r.lt) : nil), ("gt", r.hasGt ? .unsigned(r.gt) : nil),
                                                  ("gte", r.hasGte ? .unsigned(r.gte) : nil), ("lte", r.hasLte ? .unsigned(r.lte) : nil)])
        }
        if field.hasIsEmpty { object["is_empty"] = .bool(field.isEmpty) }
        if field.hasIsNull { object["is_null"] = .bool(field.isNull) }
        return .object(object)
    }

    static func json(_ match: Qdrant_Match) -> JSONValue {
        switch match.matchValue {
        case nil: [:]
        case .keyword(let s): ["value": .string(s)]
        case .integer(let i): ["value": .int(i)]
        case .boolean(let b): ["value": .bool(b)]
        case .text(let s): ["text": .string(s)]
        case .keywords(let l): ["any": .array(l.strings.map(JSONValue.string))]
        case .integers(let l): ["any": .array(l.integers.map(JSONValue.int))]
        case .exceptIntegers(let l): ["except": .array(l.integers.map(JSONValue.int))]
        case .exceptKeywords(let l): ["except": .array(l.strings.map(JSONValue.string))]
        case .phrase(let s): ["phrase": .string(s)]
        case .textAny(let s): ["text_any": .string(s)]
        case .prefix(let s): ["prefix": .string(s)]
        }
    }

    static func json(_ point: Qdrant_GeoPoint) -> JSONValue {
        ["lon": .double(point.lon), "lat": .double(point.lat)]
    }

    static func json(_ line: Qdrant_GeoLineString) -> JSONValue {
        ["points": .array(line.points.map(json))]
    }

    // MARK: Vectors

    static func json(_ vector: Qdrant_DenseVector) -> JSONValue { floats(vector.data) }

    static func json(_ vector: Qdrant_SparseVector) -> JSONValue {
        ["indices": uints(vector.indices), "values": floats(vector.values)]
    }

    static func json(_ vector: Qdrant_MultiDenseVector) -> JSONValue {
        .array(vector.vectors.map(json))
    }

    static func json(_ document: Qdrant_Document) -> JSONValue {
        object([("text", .string(document.text)), ("model", .string(document.model)),
                ("options", document.options.isEmpty ? nil : json(document.options))])
    }

    static func json(_ image: Qdrant_Image) -> JSONValue {
        object([("image", json(image.image)), ("model", .string(image.model)), ("options", image.options.isEmpty ? nil : json(image.options))])
    }

    static func json(_ object: Qdrant_InferenceObject) -> JSONValue {
        Self.object([("object", json(object.object)), ("model", .string(object.model)),
                     ("options", object.options.isEmpty ? nil : json(object.options))])
    }

    /// A point's vector: the `vector` oneof, or the deprecated `data` (+ `indices` for a sparse
    /// vector, `vectors_count` for a multivector) that older clients still send.
    static func json(_ vector: Qdrant_Vector) -> JSONValue {
        switch vector.vector {
        case .dense(let v): return json(v)
        case .sparse(let v): return json(v)
        case .multiDense(let v): return json(v)
        case .document(let d): return json(d)
        case .image(let i): return json(i)
        case .object(let o): return json(o)
        case nil:
            if vector.hasIndices { return ["indices": uints(vector.indices.data), "values": floats(vector.data)] }
            let rows = Int(vector.vectorsCount)
            if vector.hasVectorsCount, rows > 1, vector.data.count % rows == 0 {
                let width = vector.data.count / rows
                return .array((0..<rows).map { floats(Array(vector.data[($0 * width)..<(($0 + 1) * width)])) })
            }
            return floats(vector.data)
        }
    }

    static func json(_ vectors: Qdrant_Vectors) -> JSONValue? {
        switch vectors.vectorsOptions {
        case nil: nil
        case .vector(let v): json(v)
        case .vectors(let named): .object(JSONObject(named.vectors.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
        }
    }

    static func json(_ input: Qdrant_VectorInput) -> JSONValue {
        switch input.variant {
        case nil: .null
        case .id(let id): json(id)
        case .dense(let v): json(v)
        case .sparse(let v): json(v)
        case .multiDense(let v): json(v)
        case .document(let d): json(d)
        case .image(let i): json(i)
        case .object(let o): json(o)
        }
    }

    // MARK: Selectors

    static func json(_ selector: Qdrant_WithPayloadSelector) -> JSONValue? {
        switch selector.selectorOptions {
        case nil: nil
        case .enable(let b): .bool(b)
        case .include(let i): ["include": .array(i.fields.map(JSONValue.string))]
        case .exclude(let e): ["exclude": .array(e.fields.map(JSONValue.string))]
        }
    }

    static func json(_ selector: Qdrant_WithVectorsSelector) -> JSONValue? {
        switch selector.selectorOptions {
        case nil: nil
        case .enable(let b): .bool(b)
        case .include(let i): .array(i.names.map(JSONValue.string))
        }
    }

    static func json(_ selector: Qdrant_PointsSelector) -> JSONValue {
        switch selector.pointsSelectorOneOf {
        case nil: [:]
        case .points(let list): ["points": .array(list.ids.map(json))]
        case .filter(let f): ["filter": json(f)]
        }
    }

    static func json(_ key: Qdrant_ShardKey) -> JSONValue {
        switch key.key {
        case nil: .null
        case .keyword(let s): .string(s)
        case .number(let n): .unsigned(n)
        }
    }

    static func json(_ selector: Qdrant_ShardKeySelector) -> JSONValue {
        let keys: JSONValue = selector.shardKeys.count == 1 ? json(selector.shardKeys[0]) : .array(selector.shardKeys.map(json))
        guard selector.hasFallback else { return keys }
        return ["target": keys, "fallback": json(selector.fallback)]
    }

    static func json(_ params: Qdrant_SearchParams) -> JSONValue {
        var object = JSONObject()
        if params.hasHnswEf { object["hnsw_ef"] = .unsigned(params.hnswEf) }
        if params.hasExact { object["exact"] = .bool(params.exact) }
        if params.hasIndexedOnly { object["indexed_only"] = .bool(params.indexedOnly) }
        if params.hasQuantization {
            let q = params.quantization
            object["quantization"] = Self.object([("ignore", q.hasIgnore ? .bool(q.ignore) : nil), ("rescore", q.hasRescore ? .bool(q.rescore) : nil),
                                                  ("oversampling", q.hasOversampling ? .double(q.oversampling) : nil)])
        }
        if params.hasAcorn {
            let a = params.acorn
            object["acorn"] = Self.object([("enable", a.hasEnable ? .bool(a.enable) : nil),
                                           ("max_selectivity", a.hasMaxSelectivity ? .double(a.maxSelectivity) : nil)])
        }
        if params.hasIdf { object["idf"] = params.idf.hasCorpus ? ["corpus": json(params.idf.corpus)] : [:] }
        return .object(object)
    }

    static func json(_ lookup: Qdrant_LookupLocation) -> JSONValue {
        object([("collection", .string(lookup.collectionName)), ("vector", lookup.hasVectorName ? .string(lookup.vectorName) : nil),
                ("shard_key", lookup.hasShardKeySelector ? json(lookup.shardKeySelector) : nil)])
    }
}
