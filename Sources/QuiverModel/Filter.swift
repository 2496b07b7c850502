public import QuiverJSON

/// A payload filter (`Filter`): every `must` condition holds, no `must_not` condition holds, at
/// least one `should` condition holds (when there are any), and at least `min_should.min_count`
/// of `min_should.conditions` hold.
public struct Filter: Codable, Sendable, Equatable {
    public var must: [Condition]?
    public var should: [Condition]?
    public var mustNot: [Condition]?
    public var minShould: MinShould?

    public struct MinShould: Codable, Sendable, Equatable {
        public var conditions: [Condition]
        public var minCount: Int

        public init(conditions: [Condition], minCount: Int) {
            self.conditions = conditions
            self.minCount = minCount
        }
    }

    public init(must: [Condition]? = nil, should: [Condition]? = nil, mustNot: [Condition]? = nil, minShould: MinShould? = nil) {
        self.must = must
        self.should = should
        self.mustNot = mustNot
        self.minShould = minShould
    }
}

/// One condition of a filter (`Condition`).
public indirect enum Condition: Codable, Sendable, Equatable {
    case field(FieldCondition)
    /// The key is missing, `null`, `[]`, or holds only nulls and empty arrays.
    case isEmpty(key: String)
    /// The key holds `null` (or an array containing `null`).
    case isNull(key: String)
    case hasID(Set<PointID>)
    case hasVector(String)
    /// Some element of the array at `key` (objects only) matches `filter` on its own.
    case nested(key: String, filter: Filter)
    /// `slice`: `SipHash-2-4(id bytes) % total == index`.
    case slice(index: UInt64, total: UInt64)
    case filter(Filter)
    /// The point belongs to shard `index` of a group of `count` shards placed by `ring` (not part
    /// of the API: resharding adds it to reads and transfers).
    case owner(index: UInt32, count: UInt32, ring: PointRing)
}

/// `FieldCondition`: a test on the values at `key`.
public struct FieldCondition: Codable, Sendable, Equatable {
    public var key: String
    public var match: Match?
    public var range: RangeCondition?
    public var geoBoundingBox: GeoBoundingBox?
    public var geoRadius: GeoRadius?
    public var geoPolygon: GeoPolygon?
    public var valuesCount: CountRange?
    public var isEmpty: Bool?
    public var isNull: Bool?
    /// How `text`, `text_any` and `phrase` tokenize: the field's text index settings, bound by
    /// the collection (`Filter.binding(_:)`); the default word tokenizer when nil.
    public var analyzer: TextAnalyzer?

    /// The analyzer is bound where the filter runs, so it does not travel between peers.
    enum CodingKeys: String, CodingKey {
        case key, match, range, geoBoundingBox, geoRadius, geoPolygon, valuesCount, isEmpty, isNull
    }

    public init(key: String, match: Match? = nil, range: RangeCondition? = nil) {
        self.key = key
        self.match = match
        self.range = range
    }
}

public enum Match: Codable, Sendable, Equatable {
    /// `value`: a string, an integer or a boolean, compared exactly.
    case keyword(String)
    case integer(Int64)
    case bool(Bool)
    case text(String)
    case textAny(String)
    case phrase(String)
    case prefix(String)
    case anyStrings([String])
    case anyIntegers([Int64])
    case exceptStrings([String])
    case exceptIntegers([Int64])
}

/// `Range` on numbers or `DatetimeRange` on RFC 3339 datetimes (microseconds since the epoch).
public enum RangeCondition: Codable, Sendable, Equatable {
    case number(Bounds<Double>)
    case datetime(Bounds<Int64>)
}

public struct Bounds<Value: Comparable & Sendable>: Sendable, Equatable {
    public var lt: Value?
    public var lte: Value?
    public var gt: Value?
    public var gte: Value?

    public init(lt: Value? = nil, lte: Value? = nil, gt: Value? = nil, gte: Value? = nil) {
        self.lt = lt
        self.lte = lte
        self.gt = gt
        self.gte = gte
    }

    public func contains(_ value: Value) -> Bool {
        if let lt, !(value < lt) { return false }
        if let lte, !(value <= lte) { return false }
        if let gt, !(value > gt) { return false }
        if let gte, !(value >= gte) { return false }
        return true
    }
}

extension Bounds: Codable where Value: Codable {}

/// `ValuesCount`.
public typealias CountRange = Bounds<Int>

public struct GeoPoint: Codable, Sendable, Equatable {
    public var lon: Double
    public var lat: Double

    public init(lon: Double, lat: Double) {
        self.lon = lon
        self.lat = lat
    }
}

public struct GeoBoundingBox: Codable, Sendable, Equatable {
    public var topLeft: GeoPoint
    public var bottomRight: GeoPoint
}

public struct GeoRadius: Codable, Sendable, Equatable {
    public var center: GeoPoint
    /// Meters.
    public var radius: Double

    public init(center: GeoPoint, radius: Double) {
        self.center = center
        self.radius = radius
    }
}

public struct GeoPolygon: Codable, Sendable, Equatable {
    /// Closed rings: first point equals last, at least 4 points.
    public var exterior: [GeoPoint]
    public var interiors: [[GeoPoint]]
}

// MARK: Parsing

/// Filters as request bodies carry them; every unknown field and ill-typed value is an error that
/// names its path.
extension PointsJSON {
    public static func filter(_ value: JSONValue?, _ path: String) throws(Failure) -> Filter? {
        guard let value, !value.isNull else { return nil }
        let body = try object(value, path)
        try allowOnly(body, ["must", "should", "must_not", "min_should"], path)
        var filter = Filter()
        filter.must = try conditionList(body["must"], join(path, "must"))
        filter.should = try conditionList(body["should"], join(path, "should"))
        filter.mustNot = try conditionList(body["must_not"], join(path, "must_not"))
        if let raw = body["min_should"], !raw.isNull {
            let minPath = join(path, "min_should")
            let minShould = try object(raw, minPath)
            try allowOnly(minShould, ["conditions", "min_count"], minPath)
            guard let conditions = minShould["conditions"] else { throw fail(minPath, "missing field `conditions`") }
            guard let count = minShould["min_count"] else { throw fail(minPath, "missing field `min_count`") }
            filter.minShould = Filter.MinShould(
                conditions: try conditionList(conditions, join(minPath, "conditions")) ?? [],
                minCount: try unsigned(count, join(minPath, "min_count")))
        }
        return filter
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    static func allowOnly(_ object: JSONObject, _ keys: Set<String>, _ path: String) throws(Failure) {
        for key in object.keys where !keys.contains(key) {
            throw fail(join(path, key), "unknown field `\(key)`, expected one of \(keys.sorted().map { "`\($0)`" }.joined(separator: ", "))")
        }
    }

    /// A condition or an array of conditions.
    static func conditionList(_ value: JSONValue?, _ path: String) throws(Failure) -> [Condition]? {
        guard let value, !value.isNull else { return nil }
        if case .array(let elements) = value {
            var result: [Condition] = []
            for (i, element) in elements.enumerated() { result.append(try condition(element, "\(path)[\(i)]")) }
            return result
        }
        return [try condition(value, path)]
    }

    static func condition(_ value: JSONValue, _ path: String) throws(Failure) -> Condition {
        let body = try object(value, path)
        if body["key"] != nil { return .field(try fieldCondition(body, path)) }
        if let isEmpty = body["is_empty"] {
            try allowOnly(body, ["is_empty"], path)
            return .isEmpty(key: try payloadField(isEmpty, join(path, "is_empty")))
        }
        if let isNull = body["is_null"] {
            try allowOnly(body, ["is_null"], path)
            return .isNull(key: try payloadField(isNull, join(path, "is_null")))
        }
        if let hasID = body["has_id"] {
            try allowOnly(body, ["has_id"], path)
            return .hasID(Set(try ids(hasID, join(path, "has_id"))))
        }
        if let hasVector = body["has_vector"] {
            try allowOnly(body, ["has_vector"], path)
            guard let name = hasVector.stringValue else {
                throw fail(join(path, "has_vector"), "invalid type: \(hasVector.kindDescription), expected a string")
            }
            return .hasVector(name)
        }
        if let nested = body["nested"] {
            try allowOnly(body, ["nested"], path)
            let nestedPath = join(path, "nested")
            let inner = try object(nested, nestedPath)
            try allowOnly(inner, ["key", "filter"], nestedPath)
            guard let key = inner["key"]?.stringValue else { throw fail(join(nestedPath, "key"), "missing field `key` (a string)") }
            guard let filter = try filter(inner["filter"], join(nestedPath, "filter")) else {
                throw fail(nestedPath, "missing field `filter`")
            }
            return .nested(key: key, filter: filter)
        }
        if let slice = body["slice"] {
            try allowOnly(body, ["slice"], path)
            let slicePath = join(path, "slice")
            let inner = try object(slice, slicePath)
            try allowOnly(inner, ["index", "total"], slicePath)
            guard let index = inner["index"], let total = inner["total"] else { throw fail(slicePath, "missing field `index` or `total`") }
            let t = try unsigned(total, join(slicePath, "total")), i = try unsigned(index, join(slicePath, "index"))
            guard t > 0, t <= UInt32.max, i <= UInt32.max else {
                throw fail(slicePath, "`total` must be from 1 to \(UInt32.max) and `index` at most \(UInt32.max)")
            }
            guard i < t else {
                throw Failure(path: path + ".__all__", message: "Validation error: Slice index must be less than the total number of slices [{}]",
                              isValidation: true)
            }
            return .slice(index: UInt64(i), total: UInt64(t))
        }
        if body.keys.contains(where: { ["must", "should", "must_not", "min_should"].contains($0) }) || body.isEmpty {
            return .filter(try filter(value, path) ?? Filter())
        }
        throw fail(path, "unknown condition with fields \(body.keys.map { "`\($0)`" }.joined(separator: ", ")); expected a field condition (`key`), `is_empty`, `is_null`, `has_id`, `has_vector`, `nested`, `slice` or a nested filter")
    }

    /// `{"key": "…"}` (`PayloadField`), or the bare key string.
    static func payloadField(_ value: JSONValue, _ path: String) throws(Failure) -> String {
        if let key = value.stringValue { return key }
        let body = try object(value, path)
        try allowOnly(body, ["key"], path)
        guard let key = body["key"]?.stringValue else { throw fail(join(path, "key"), "missing field `key` (a string)") }
        return key
    }

    static func fieldCondition(_ body: JSONObject, _ path: String) throws(Failure) -> FieldCondition {
        try allowOnly(body, ["key", "match", "range", "geo_bounding_box", "geo_radius", "geo_polygon", "values_count", "is_empty", "is_null"], path)
        guard let key = body["key"]?.stringValue else { throw fail(join(path, "key"), "invalid type, expected a string") }
        var condition = FieldCondition(key: key)
        var count = 0
        if let raw = body["match"], !raw.isNull { condition.match = try match(raw, join(path, "match")); count += 1 }
        if let raw = body["range"], !raw.isNull { condition.range = try range(raw, join(path, "range")); count += 1 }
        if let raw = body["geo_bounding_box"], !raw.isNull {
            let p = join(path, "geo_bounding_box")
            let box = try object(raw, p)
            try allowOnly(box, ["top_left", "bottom_right"], p)
            guard let topLeft = box["top_left"], let bottomRight = box["bottom_right"] else { throw fail(p, "missing field `top_left` or `bottom_right`") }
            condition.geoBoundingBox = GeoBoundingBox(topLeft: try geoPoint(topLeft, join(p, "top_left")),
                                                      bottomRight: try geoPoint(bottomRight, join(p, "bottom_right")))
            count += 1
        }
        if let raw = body["geo_radius"], !raw.isNull {
            let p = join(path, "geo_radius")
            let circle = try object(raw, p)
            try allowOnly(circle, ["center", "radius"], p)
            guard let center = circle["center"], let radius = circle["radius"]?.doubleValue else { throw fail(p, "missing field `center` or `radius` (a number)") }
            condition.geoRadius = GeoRadius(center: try geoPoint(center, join(p, "center")), radius: radius)
            count += 1
        }
        if let raw = body["geo_polygon"], !raw.isNull {
            let p = join(path, "geo_polygon")
            let polygon = try object(raw, p)
            try allowOnly(polygon, ["exterior", "interiors"], p)
            guard let exterior = polygon["exterior"] else { throw fail(p, "missing field `exterior`") }
            var interiors: [[GeoPoint]] = []
            if let raw = polygon["interiors"], !raw.isNull {
                for (i, ring) in try array(raw, join(p, "interiors")).enumerated() {
                    interiors.append(try lineString(ring, "\(join(p, "interiors"))[\(i)]"))
                }
            }
            condition.geoPolygon = GeoPolygon(exterior: try lineString(exterior, join(p, "exterior")), interiors: interiors)
            count += 1
        }
        if let raw = body["values_count"], !raw.isNull {
            let p = join(path, "values_count")
            let bounds = try object(raw, p)
            try allowOnly(bounds, ["lt", "lte", "gt", "gte"], p)
            func bound(_ name: String) throws(Failure) -> Int? {
                guard let v = bounds[name], !v.isNull else { return nil }
                return try unsigned(v, join(p, name))
            }
            condition.valuesCount = CountRange(lt: try bound("lt"), lte: try bound("lte"), gt: try bound("gt"), gte: try bound("gte"))
            count += 1
        }
        for name in ["is_empty", "is_null"] {
            guard let raw = body[name], !raw.isNull else { continue }
            guard case .bool(let flag) = raw else { throw fail(join(path, name), "invalid type: \(raw.kindDescription), expected a boolean") }
            if name == "is_empty" { condition.isEmpty = flag } else { condition.isNull = flag }
            count += 1
        }
        guard count == 1 else {
            throw fail(path, count == 0
                ? "field condition on `\(key)` has no test: give one of `match`, `range`, `geo_bounding_box`, `geo_radius`, `geo_polygon`, `values_count`, `is_empty`, `is_null`"
                : "field condition on `\(key)` has more than one test; use one condition per test")
        }
        return condition
    }

    static func match(_ value: JSONValue, _ path: String) throws(Failure) -> Match {
        let body = try object(value, path)
        guard body.count == 1, let (name, raw) = body.first(where: { _ in true }) else {
            throw fail(path, "expected exactly one of `value`, `text`, `text_any`, `phrase`, `prefix`, `any`, `except`")
        }
        let p = join(path, name)
        func text() throws(Failure) -> String {
            guard let s = raw.stringValue else { throw fail(p, "invalid type: \(raw.kindDescription), expected a string") }
            return s
        }
        switch name {
        case "value":
            switch raw {
            case .string(let s): return .keyword(s)
            case .int(let i): return .integer(i)
            case .bool(let b): return .bool(b)
            default: throw fail(p, "invalid type: \(raw.kindDescription), expected a string, an integer or a boolean")
            }
        case "text": return .text(try text())
        case "text_any": return .textAny(try text())
        case "phrase": return .phrase(try text())
        case "prefix": return .prefix(try text())
        case "any", "except":
            let elements = try array(raw, p)
            if elements.allSatisfy({ $0.stringValue != nil }) {
                let strings = elements.compactMap(\.stringValue)
                return name == "any" ? .anyStrings(strings) : .exceptStrings(strings)
            }
            var integers: [Int64] = []
            for (i, element) in elements.enumerated() {
                guard case .int(let n) = element else {
                    throw fail("\(p)[\(i)]", "invalid type: \(element.kindDescription), expected all strings or all integers")
                }
                integers.append(n)
            }
            return name == "any" ? .anyIntegers(integers) : .exceptIntegers(integers)
        default:
            throw fail(p, "unknown field `\(name)`, expected one of `value`, `text`, `text_any`, `phrase`, `prefix`, `any`, `except`")
        }
    }

    static func range(_ value: JSONValue, _ path: String) throws(Failure) -> RangeCondition {
        let body = try object(value, path)
        try allowOnly(body, ["lt", "lte", "gt", "gte"], path)
        let present = ["lt", "lte", "gt", "gte"].filter { body[$0].map { !$0.isNull } ?? false }
        guard !present.isEmpty else { throw fail(path, "range has no bound: give at least one of `lt`, `lte`, `gt`, `gte`") }
        if present.allSatisfy({ body[$0]?.doubleValue != nil }) {
            return .number(Bounds(lt: body["lt"]?.doubleValue, lte: body["lte"]?.doubleValue,
                                  gt: body["gt"]?.doubleValue, gte: body["gte"]?.doubleValue))
        }
        var bounds = Bounds<Int64>()
        for name in present {
            guard let text = body[name]?.stringValue else {
                throw fail(join(path, name), "expected a number or an RFC 3339 datetime, got \(body[name]!.kindDescription)")
            }
            guard let micros = Datetime.parse(text) else {
                throw fail(join(path, name), "'\(text)' does not match accepted datetime format (RFC3339). Example: 2014-01-01T00:00:00Z")
            }
            switch name {
            case "lt": bounds.lt = micros
            case "lte": bounds.lte = micros
            case "gt": bounds.gt = micros
            default: bounds.gte = micros
            }
        }
        return .datetime(bounds)
    }

    static func geoPoint(_ value: JSONValue, _ path: String) throws(Failure) -> GeoPoint {
        let body = try object(value, path)
        try allowOnly(body, ["lon", "lat"], path)
        guard let lon = body["lon"]?.doubleValue, let lat = body["lat"]?.doubleValue else {
            throw fail(path, "expected numbers `lon` and `lat`")
        }
        guard (-180...180).contains(lon), (-90...90).contains(lat) else {
            throw fail(path, "Wrong input: lon must be in [-180, 180] and lat in [-90, 90], got lon \(lon), lat \(lat)")
        }
        return GeoPoint(lon: lon, lat: lat)
    }

    static func lineString(_ value: JSONValue, _ path: String) throws(Failure) -> [GeoPoint] {
        let body = try object(value, path)
        try allowOnly(body, ["points"], path)
        guard let raw = body["points"] else { throw fail(path, "missing field `points`") }
        var points: [GeoPoint] = []
        for (i, element) in try array(raw, join(path, "points")).enumerated() {
            points.append(try geoPoint(element, "\(join(path, "points"))[\(i)]"))
        }
        guard points.count >= 4, points.first == points.last else {
            throw fail(path, "a polygon ring needs at least 4 points, the first and the last the same")
        }
        return points
    }

    static func unsigned(_ value: JSONValue, _ path: String) throws(Failure) -> Int {
        guard case .int(let n) = value, n >= 0 else { throw fail(path, "invalid value: \(value.kindDescription), expected a non-negative integer") }
        return Int(n)
    }
}
