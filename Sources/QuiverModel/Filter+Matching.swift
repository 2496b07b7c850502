import Foundation
public import QuiverJSON

/// Filter evaluation on one point, with Qdrant's semantics: a path selects values without
/// descending into arrays unless it says `[]` or `[i]`; a field condition holds when any selected
/// value (or any element of a selected array) passes; a missing key passes only `is_empty`,
/// `is_null: false` and a `values_count` that admits 0. Text matches on whole lowercase word
/// tokens, as Qdrant's default word tokenizer makes them.
///
/// This is the brute-force evaluator: indexes may find candidates faster, but never disagree with it.
extension Filter {
    public func matches(id: PointID?, payload: JSONObject?, hasVector: (String) -> Bool) -> Bool {
        let root = JSONValue.object(payload ?? JSONObject())
        return Self.check(self, root, id, hasVector)
    }

    static func check(_ filter: Filter, _ root: JSONValue, _ id: PointID?, _ hasVector: (String) -> Bool) -> Bool {
        func holds(_ condition: Condition) -> Bool { condition.holds(root, id, hasVector) }
        if let should = filter.should, !should.contains(where: holds) { return false }
        if let minShould = filter.minShould {
            var count = 0
            for condition in minShould.conditions where holds(condition) {
                count += 1
                if count >= minShould.minCount { break }
            }
            if count < minShould.minCount { return false }
        }
        if let must = filter.must, !must.allSatisfy(holds) { return false }
        if let mustNot = filter.mustNot, mustNot.contains(where: holds) { return false }
        return true
    }
}

extension Condition {
    func holds(_ root: JSONValue, _ id: PointID?, _ hasVector: (String) -> Bool) -> Bool {
        switch self {
        case .field(let condition):
            return condition.holds(PayloadPath.values(condition.key, in: root))
        case .isEmpty(let key):
            return PayloadPath.values(key, in: root).allSatisfy(\.isEmptyValue)
        case .isNull(let key):
            return PayloadPath.values(key, in: root).contains(where: \.isNullValue)
        case .hasID(let ids):
            return id.map { ids.contains($0) } ?? false
        case .hasVector(let name):
            return hasVector(name)
        case .nested(let key, let filter):
            // Conditions on ids and vectors do not apply inside nested objects.
            let arrayKey = key.hasSuffix("[]") ? key : key + "[]"
            return PayloadPath.values(arrayKey, in: root).contains { element in
                element.objectValue != nil && Filter.check(filter, element, nil, { _ in false })
            }
        case .slice(let index, let total):
            return id.map { SipHash24.hash($0.canonicalBytes) % total == index } ?? false
        case .filter(let filter):
            return Filter.check(filter, root, id, hasVector)
        case .owner(let index, let count, let ring):
            return id.map { PointRouting.shardIndex(of: $0, shardCount: Int(count), ring: ring) == Int(index) } ?? false
        }
    }
}

extension FieldCondition {
    /// `values`: what the key selects, arrays not unwrapped.
    func holds(_ values: [JSONValue]) -> Bool {
        if let valuesCount {
            // A missing key, or only nulls, counts as one value count of 0.
            guard !values.allSatisfy(\.isNull) else { return valuesCount.contains(0) }
            return values.contains { value in
                switch value {
                case .null: valuesCount.contains(0)
                case .array(let elements): valuesCount.contains(elements.count)
                default: valuesCount.contains(1)
                }
            }
        }
        if let isEmpty { return values.allSatisfy(\.isEmptyValue) == isEmpty }
        if let isNull { return values.contains(where: \.isNullValue) == isNull }
        return values.contains { value in
            if case .array(let elements) = value { return elements.contains(where: matchesOne) }
            return matchesOne(value)
        }
    }

    /// The condition on one value that is not itself a (top-level) array.
    func matchesOne(_ value: JSONValue) -> Bool {
        if let match { return match.matches(value, analyzer: analyzer ?? .standard) }
        if let range {
            switch range {
            case .number(let bounds): return value.doubleValue.map(bounds.contains) ?? false
            case .datetime(let bounds): return value.stringValue.flatMap(Datetime.parse).map(bounds.contains) ?? false
            }
        }
        guard let point = GeoPoint(json: value) else { return false }
        if let box = geoBoundingBox { return box.contains(point) }
        if let circle = geoRadius { return circle.contains(point) }
        if let polygon = geoPolygon { return polygon.contains(point) }
        return false
    }
}

extension Match {
    func matches(_ value: JSONValue, analyzer: TextAnalyzer) -> Bool {
        switch self {
        case .keyword(let s): return value.stringValue == s
        case .integer(let n): return value.exactInteger == n
        case .bool(let b): if case .bool(let stored) = value { return stored == b } else { return false }
        case .text(let text):
            guard let stored = value.stringValue else { return false }
            let query = analyzer.queryTokens(text)
            let document = Set(analyzer.documentTokens(stored))
            return !query.isEmpty && query.allSatisfy { analyzer.contains(document, $0) }
        case .textAny(let text):
            guard let stored = value.stringValue else { return false }
            let document = Set(analyzer.documentTokens(stored))
            return analyzer.queryTokens(text).contains { analyzer.contains(document, $0) }
        case .phrase(let phrase):
            guard let stored = value.stringValue else { return false }
            let query = analyzer.tokens(phrase), document = analyzer.tokens(stored)
            guard !query.isEmpty, document.count >= query.count else { return false }
            return (0...(document.count - query.count)).contains { Array(document[$0..<($0 + query.count)]) == query }
        case .prefix(let prefix): return value.stringValue?.hasPrefix(prefix) ?? false
        case .anyStrings(let list): return value.stringValue.map(list.contains) ?? false
        case .anyIntegers(let list): return value.exactInteger.map(list.contains) ?? false
        case .exceptStrings(let list):
            switch value {
            case .null: return false
            case .string(let s): return !list.contains(s)
            default: return true
            }
        case .exceptIntegers(let list):
            switch value {
            case .null: return false
            case .int, .uint, .double: return value.exactInteger.map { !list.contains($0) } ?? true
            default: return true
            }
        }
    }
}

extension Filter {
    /// The filter with its text conditions tokenized as the text indexes of their fields say.
    public func binding(_ analyzers: [String: TextAnalyzer]) -> Filter {
        guard !analyzers.isEmpty else { return self }
        func bind(_ conditions: [Condition]?) -> [Condition]? {
            conditions?.map { condition in
                switch condition {
                case .field(var field):
                    field.analyzer = analyzers[field.key]
                    return .field(field)
                case .filter(let inner): return .filter(inner.binding(analyzers))
                default: return condition
                }
            }
        }
        var result = self
        result.must = bind(must)
        result.should = bind(should)
        result.mustNot = bind(mustNot)
        if let minShould { result.minShould = MinShould(conditions: bind(minShould.conditions) ?? [], minCount: minShould.minCount) }
        return result
    }
}

extension JSONValue {
    /// Null, or an empty array.
    public var isEmptyValue: Bool {
        switch self {
        case .null: true
        case .array(let elements): elements.isEmpty
        default: false
        }
    }

    /// Null, or an array with a null element (one level deep).
    var isNullValue: Bool {
        switch self {
        case .null: true
        case .array(let elements): elements.contains { $0.isNull }
        default: false
        }
    }

    /// The value as an Int64 when it is an integer (JSON `1`, not `1.0`), as serde_json's `as_i64`.
    var exactInteger: Int64? {
        switch self {
        case .int(let n): n
        default: nil
        }
    }
}

// MARK: Paths

extension PayloadPath {
    /// The values `path` selects in `root` (an object). Arrays are entered only by `[]` and `[i]`.
    public static func values(_ path: String, in root: JSONValue) -> [JSONValue] {
        var result: [JSONValue] = []
        collect(steps(path)[...], root, &result)
        return result
    }

    private static func collect(_ steps: ArraySlice<Step>, _ value: JSONValue, _ result: inout [JSONValue]) {
        guard let step = steps.first else {
            result.append(value)
            return
        }
        switch (step, value) {
        case (.key(let name), .object(let object)):
            if let child = object[name] { collect(steps.dropFirst(), child, &result) }
        case (.index(let i), .array(let elements)):
            if elements.indices.contains(i) { collect(steps.dropFirst(), elements[i], &result) }
        case (.every, .array(let elements)):
            for element in elements { collect(steps.dropFirst(), element, &result) }
        default:
            break
        }
    }
}

// MARK: Geo

extension GeoPoint {
    /// `{"lon": …, "lat": …}` in a payload.
    public init?(json: JSONValue) {
        guard case .object(let object) = json, let lon = object["lon"]?.doubleValue, let lat = object["lat"]?.doubleValue else { return nil }
        self.init(lon: lon, lat: lat)
    }

    public static let earthRadiusMeters = 6_371_008.8

    /// Great-circle distance in meters (haversine).
    public func distance(to other: GeoPoint) -> Double {
        let lat1 = lat * .pi / 180, lat2 = other.lat * .pi / 180
        let dLat = lat2 - lat1, dLon = (other.lon - lon) * .pi / 180
        let a = sin(dLat / 2) * sin(dLat / 2) + cos(lat1) * cos(lat2) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * Self.earthRadiusMeters * asin(min(1, sqrt(a)))
    }
}

extension GeoBoundingBox {
    func contains(_ point: GeoPoint) -> Bool {
        let lonInside = topLeft.lon > bottomRight.lon
            ? point.lon > topLeft.lon || point.lon < bottomRight.lon // crosses the antimeridian
            : topLeft.lon < point.lon && point.lon < bottomRight.lon
        return lonInside && bottomRight.lat < point.lat && point.lat < topLeft.lat
    }
}

extension GeoRadius {
    func contains(_ point: GeoPoint) -> Bool { center.distance(to: point) < radius }
}

extension GeoPolygon {
    /// Inside the exterior ring and outside every interior ring (planar, lon/lat as x/y).
    func contains(_ point: GeoPoint) -> Bool {
        Self.inside(point, exterior) && !interiors.contains { Self.inside(point, $0) }
    }

    static func inside(_ point: GeoPoint, _ ring: [GeoPoint]) -> Bool {
        var inside = false
        var j = ring.count - 1
        for i in ring.indices {
            let a = ring[i], b = ring[j]
            if (a.lat > point.lat) != (b.lat > point.lat),
               point.lon < (b.lon - a.lon) * (point.lat - a.lat) / (b.lat - a.lat) + a.lon {
                inside.toggle()
            }
            j = i
        }
        return inside
    }
}

// MARK: Datetimes

/// Qdrant's datetime payload and range-bound format, parsed to microseconds since the Unix epoch.
///
/// | part | forms |
/// |---|---|
/// | date | `YYYY-M-D` (month and day one or two digits), alone or followed by a time |
/// | time | `T` or a space, then `H:M` (no zone may follow) or `H:M:S` (`S` up to 60, a leap second) with an optional fraction; `t` only before seconds and a zone other than `±HH` |
/// | fraction | `.` and digits; past microseconds the digits are cut off |
/// | zone (after seconds) | none (UTC), or optional whitespace then `Z`, `z`, `UTC` (any case), `±HH`, `±HHMM`, `±HH:MM` or `±HH MM`, then optional whitespace |
///
/// Whitespace before the date is skipped. These are the forms Qdrant's engine accepts (its own
/// output among them, with a space before the offset or ` UTC`).
public enum Datetime {
    public static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var at = 0
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        func skipSpaces() -> Bool {
            let start = at
            while at < bytes.count, isSpace(bytes[at]) { at += 1 }
            return at > start
        }
        func digit(_ b: UInt8) -> Bool { (48...57).contains(b) }
        func number(_ minDigits: Int, _ maxDigits: Int) -> Int? {
            var value = 0, count = 0
            while count < maxDigits, at < bytes.count, digit(bytes[at]) {
                value = value * 10 + Int(bytes[at] - 48)
                count += 1
                at += 1
            }
            return count >= minDigits ? value : nil
        }
        func expect(_ c: Unicode.Scalar) -> Bool {
            guard at < bytes.count, bytes[at] == UInt8(ascii: c) else { return false }
            at += 1
            return true
        }
        _ = skipSpaces()
        guard let year = number(4, 4), expect("-"), let month = number(1, 2), expect("-"), let day = number(1, 2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        var seconds = 0, micros = 0, offset = 0
        // A lowercase `t` only reaches Qdrant's RFC 3339 parsers: seconds and a full zone must follow.
        var rfc3339Only = false, fullZone = false
        if at < bytes.count {
            rfc3339Only = expect("t")
            guard rfc3339Only || expect("T") || expect(" ") else { return nil }
            guard let hour = number(1, 2), expect(":"), let minute = number(1, 2), hour < 24, minute < 60 else { return nil }
            seconds = hour * 3600 + minute * 60
            if at < bytes.count {
                guard expect(":"), let second = number(1, 2), second <= 60 else { return nil }
                seconds += second
                if expect(".") {
                    var digits = 0
                    while at < bytes.count, digit(bytes[at]) {
                        if digits < 6 { micros = micros * 10 + Int(bytes[at] - 48) }
                        digits += 1
                        at += 1
                    }
                    guard digits > 0 else { return nil }
                    for _ in digits..<max(digits, 6) { micros *= 10 }
                }
                let spaced = skipSpaces()
                if at + 3 <= bytes.count, bytes[at] | 0x20 == UInt8(ascii: "u"), bytes[at + 1] | 0x20 == UInt8(ascii: "t"),
                   bytes[at + 2] | 0x20 == UInt8(ascii: "c") {
                    at += 3
                    fullZone = true
                } else if expect("Z") || expect("z") {
                    fullZone = true
                } else if at < bytes.count {
                    let start = at
                    guard let zone = self.offset(bytes, &at) else { return nil }
                    offset = zone
                    fullZone = at - start >= 5
                } else if spaced {
                    return nil
                }
                _ = skipSpaces()
            }
        }
        guard at == bytes.count, !rfc3339Only || fullZone else { return nil }
        return Int64(daysFromCivil(year: year, month: month, day: day) * 86_400 + seconds - offset) * 1_000_000 + Int64(micros)
    }

    /// `±HH`, `±HHMM`, `±HH:MM` or `±HH MM`, in seconds east of UTC.
    private static func offset(_ bytes: [UInt8], _ at: inout Int) -> Int? {
        guard bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") else { return nil }
        let sign = bytes[at] == UInt8(ascii: "-") ? -1 : 1
        func twoDigits(_ i: Int) -> Int? {
            guard i + 2 <= bytes.count, (48...57).contains(bytes[i]), (48...57).contains(bytes[i + 1]) else { return nil }
            return Int(bytes[i] - 48) * 10 + Int(bytes[i + 1] - 48)
        }
        guard let hours = twoDigits(at + 1), hours < 24 else { return nil }
        at += 3
        var minutes = 0
        if at < bytes.count, bytes[at] == UInt8(ascii: ":") || bytes[at] == UInt8(ascii: " ") {
            guard let m = twoDigits(at + 1) else { return nil }
            minutes = m
            at += 3
        } else if let m = twoDigits(at) {
            minutes = m
            at += 2
        }
        guard minutes < 60 else { return nil }
        return sign * (hours * 3600 + minutes * 60)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

// MARK: Slices

extension PointID {
    /// 8 little-endian bytes of a number, or the 16 RFC 4122 bytes of a UUID.
    var canonicalBytes: [UInt8] {
        switch self {
        case .number(let n): return withUnsafeBytes(of: n.littleEndian) { Array($0) }
        case .uuid(let high, let low):
            return withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) }
        }
    }
}

/// SipHash-2-4 with a zero key.
enum SipHash24 {
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575, v1: UInt64 = 0x646f_7261_6e64_6f6d
        var v2: UInt64 = 0x6c79_6765_6e65_7261, v3: UInt64 = 0x7465_6462_7974_6573
        func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }
        var at = 0
        while at + 8 <= bytes.count {
            var m: UInt64 = 0
            for i in 0..<8 { m |= UInt64(bytes[at + i]) << (8 * i) }
            v3 ^= m; round(); round(); v0 ^= m
            at += 8
        }
        var last = UInt64(bytes.count & 0xff) << 56
        for i in 0..<(bytes.count - at) { last |= UInt64(bytes[at + i]) << (8 * i) }
        v3 ^= last; round(); round(); v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    func rotatedLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
