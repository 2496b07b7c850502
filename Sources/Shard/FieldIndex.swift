import Foundation
import CChecksum
import DiskIO
import QuiverJSON
import QuiverModel

/// A payload index over one field of an immutable segment: exact values to offsets, and numbers
/// and datetimes sorted for ranges. It only proposes candidates: every candidate is still checked
/// against the whole filter, so an index changes how fast a filter runs, never what it returns. For
/// that, candidates are a superset of the points a condition matches: numeric indexes (`integer`
/// and `float`) hold every number of the field, since a range matches integers and floats alike.
struct FieldIndex: Sendable {
    let schema: PayloadFieldSchema
    private(set) var exact: [JSONValue: [Int32]] = [:]
    /// (number or datetime microseconds, offset), sorted.
    private(set) var ordered: [(Double, Int32)] = []
    /// Offsets that have at least one value this index holds, ascending.
    private(set) var withValue: [Int32] = []
    /// Geo points (lat, lon, offset) of a `geo` index.
    private(set) var points: [(Double, Double, Int32)] = []
    /// Tokens to offsets, for a `text` index (tokenized as the index says).
    private(set) var tokens: [String: [Int32]] = [:]
    /// An appendable segment's index keeps numbers and geo points per offset instead of `ordered`
    /// and `points`, so that a write costs a few dictionary operations; ranges and shapes scan
    /// these (the segment is bounded by `indexing_threshold`).
    private(set) var mutable = false
    private(set) var numbersByOffset: [Int32: [Double]] = [:]
    private(set) var pointsByOffset: [Int32: [(lat: Double, lon: Double)]] = [:]
    /// How a `text` index cuts text into tokens.
    let analyzer: TextAnalyzer?

    /// Live points with at least one indexed value, and the live values indexed (telemetry).
    func counts(isLive: (Int) -> Bool) -> (points: Int, values: Int) {
        let points = withValue.count { isLive(Int($0)) }
        let values: Int = if !ordered.isEmpty { ordered.count { isLive(Int($0.1)) } }
            else if !self.points.isEmpty { self.points.count { isLive(Int($0.2)) } }
            else if !exact.isEmpty { exact.values.reduce(0) { $0 + $1.count { isLive(Int($0)) } } }
            else { tokens.values.reduce(0) { $0 + $1.count { isLive(Int($0)) } } }
        return (points, values)
    }

    init(schema: PayloadFieldSchema, key: String, segment: any SegmentData) {
        self.schema = schema
        analyzer = Self.analyzer(schema)
        for offset in 0..<segment.totalCount {
            guard let bytes = segment.payloadBytes(at: offset) else { continue }
            let values = Self.values(key, bytes)
            var indexed = add(values, Int32(offset))
            for value in values {
                if schema.type == .geo, let point = GeoPoint(json: value) {
                    points.append((point.lat, point.lon, Int32(offset)))
                    indexed = true
                }
                if let analyzer, let text = value.stringValue {
                    for token in Set(analyzer.documentTokens(text)) { tokens[token, default: []].append(Int32(offset)) }
                    indexed = true
                }
            }
            if indexed { withValue.append(Int32(offset)) }
        }
        ordered.sort { $0.0 < $1.0 }
    }

    private static func analyzer(_ schema: PayloadFieldSchema) -> TextAnalyzer? {
        schema.type == .text ? (try? TextAnalyzer(params: schema.params)) ?? .standard : nil
    }

    /// Points inside the bounding box of a geo condition (a superset of the points inside the
    /// shape); nil when there is no geo condition, or its box reaches a pole.
    private func geoCandidates(_ condition: FieldCondition) -> [Int32]? {
        guard schema.type == .geo else { return nil }
        var box: (south: Double, north: Double, west: Double, east: Double)
        if let b = condition.geoBoundingBox {
            box = (b.bottomRight.lat, b.topLeft.lat, b.topLeft.lon, b.bottomRight.lon)
        } else if let circle = condition.geoRadius {
            let dLat = circle.radius / GeoPoint.earthRadiusMeters * 180 / .pi
            let south = circle.center.lat - dLat, north = circle.center.lat + dLat
            guard south > -89, north < 89 else { return nil }
            let dLon = dLat / cos(max(abs(south), abs(north)) * .pi / 180)
            guard dLon < 179 else { return nil }
            box = (south, north, circle.center.lon - dLon, circle.center.lon + dLon)
            if box.west < -180 { box.west += 360 }
            if box.east > 180 { box.east -= 360 }
        } else if let polygon = condition.geoPolygon {
            box = (polygon.exterior.map(\.lat).min()!, polygon.exterior.map(\.lat).max()!,
                   polygon.exterior.map(\.lon).min()!, polygon.exterior.map(\.lon).max()!)
        } else {
            return nil
        }
        let crosses = box.west > box.east
        func inside(_ lat: Double, _ lon: Double) -> Bool {
            lat >= box.south && lat <= box.north && (crosses ? (lon >= box.west || lon <= box.east) : (lon >= box.west && lon <= box.east))
        }
        if mutable {
            return pointsByOffset.compactMap { offset, points in points.contains { inside($0.lat, $0.lon) } ? offset : nil }.sorted()
        }
        return Self.union([points.compactMap { lat, lon, offset in inside(lat, lon) ? offset : nil }])
    }

    /// Points having the query's tokens: all of them (`text`, `phrase`) or any (`text_any`).
    private func textCandidates(_ match: Match) -> [Int32]? {
        let analyzer = analyzer ?? .standard
        let query: [String], all: Bool
        switch match {
        case .text(let text): (query, all) = (analyzer.queryTokens(text), true)
        case .phrase(let text): (query, all) = (analyzer.tokens(text), true)
        case .textAny(let text): (query, all) = (analyzer.queryTokens(text), false)
        default: return nil
        }
        guard !query.isEmpty else { return [] }
        let lists = query.map { token -> [Int32] in
            analyzer.tokenizer == .prefix
                ? Self.union(tokens.filter { $0.key.hasPrefix(token) }.map(\.value))
                : tokens[token] ?? []
        }
        if !all { return Self.union(lists) }
        var result = Set(lists[0])
        for list in lists.dropFirst() { result.formIntersection(list) }
        return result.sorted()
    }

    /// The values of `key` in a stored payload, arrays unwrapped one level.
    static func values(_ key: String, _ bytes: [UInt8]?) -> [JSONValue] {
        guard let bytes else { return [] }
        let root = JSONValue.object(AppendableSegment.decode(bytes) ?? JSONObject())
        return PayloadPath.values(key, in: root).flatMap(\.elements)
    }

    private mutating func add(_ values: [JSONValue], _ offset: Int32) -> Bool {
        var indexed = false
        for value in values { indexed = add(value, offset) || indexed }
        return indexed
    }

    /// Keeps the index of an appendable segment current: the point at `offset` now has payload
    /// `new` instead of `old`.
    mutating func update(offset: Int32, key: String, old: [UInt8]?, new: [UInt8]?) {
        for value in Self.values(key, old) {
            if let exactKey = exactKey(value) { Self.remove(offset, from: &exact, at: exactKey) }
            if let analyzer, let text = value.stringValue {
                for token in Set(analyzer.documentTokens(text)) { Self.remove(offset, from: &tokens, at: token) }
            }
        }
        numbersByOffset[offset] = nil
        pointsByOffset[offset] = nil
        var indexed = false
        for value in Self.values(key, new) {
            if let exactKey = exactKey(value) {
                if exact[exactKey]?.last != offset { exact[exactKey, default: []].append(offset) }
                indexed = true
            }
            if let number = orderedValue(value) {
                numbersByOffset[offset, default: []].append(number)
                indexed = true
            }
            if schema.type == .geo, let point = GeoPoint(json: value) {
                pointsByOffset[offset, default: []].append((point.lat, point.lon))
                indexed = true
            }
            if let analyzer, let text = value.stringValue {
                for token in Set(analyzer.documentTokens(text)) where tokens[token]?.last != offset { tokens[token, default: []].append(offset) }
                indexed = true
            }
        }
        var low = 0, high = withValue.count
        while low < high { let mid = (low + high) / 2; if withValue[mid] < offset { low = mid + 1 } else { high = mid } }
        let present = low < withValue.count && withValue[low] == offset
        if indexed && !present { withValue.insert(offset, at: low) }
        if !indexed && present { withValue.remove(at: low) }
    }

    private static func remove<Key: Hashable>(_ offset: Int32, from lists: inout [Key: [Int32]], at key: Key) {
        guard var list = lists[key] else { return }
        list.removeAll { $0 == offset }
        lists[key] = list.isEmpty ? nil : list
    }

    /// The key of `exact` a payload value is filed under, if this index files it there.
    private func exactKey(_ value: JSONValue) -> JSONValue? {
        switch (schema.type, value) {
        case (.keyword, .string), (.bool, .bool), (.integer, .int): value
        case (.uuid, .string(let s)): PointID(uuidString: s).map { .string($0.description) }
        default: nil
        }
    }

    /// The number a payload value sorts by in a range-capable index.
    private func orderedValue(_ value: JSONValue) -> Double? {
        switch (schema.type, value) {
        case (.integer, .int), (.integer, .uint), (.integer, .double), (.float, .int), (.float, .uint), (.float, .double):
            value.doubleValue
        case (.datetime, .string(let s)): Datetime.parse(s).map(Double.init)
        default: nil
        }
    }

    /// An index of an appendable segment, maintained by `update`.
    init(appendableSchema schema: PayloadFieldSchema, key: String, segment: AppendableSegment) {
        self.schema = schema
        analyzer = Self.analyzer(schema)
        mutable = true
        for offset in 0..<segment.totalCount {
            update(offset: Int32(offset), key: key, old: nil, new: segment.payloadBytes(at: offset))
        }
    }

    private mutating func add(_ value: JSONValue, _ offset: Int32) -> Bool {
        let key = exactKey(value), number = orderedValue(value)
        if let key { exact[key, default: []].append(offset) }
        if let number { ordered.append((number, offset)) }
        return key != nil || number != nil
    }

    /// Offsets (ascending, unique) that include every point `condition` matches, or nil when this
    /// index cannot narrow it down.
    func candidates(_ condition: FieldCondition) -> [Int32]? {
        if let match = condition.match {
            if schema.type == .text { return textCandidates(match) }
            let keys: [JSONValue]
            switch (schema.type, match) {
            case (.keyword, .keyword(let s)): keys = [.string(s)]
            case (.keyword, .anyStrings(let list)): keys = list.map(JSONValue.string)
            case (.uuid, .keyword(let s)): keys = [.string(PointID(uuidString: s)?.description ?? s)]
            case (.uuid, .anyStrings(let list)): keys = list.map { .string(PointID(uuidString: $0)?.description ?? $0) }
            case (.integer, .integer(let n)): keys = [.int(n)]
            case (.integer, .anyIntegers(let list)): keys = list.map(JSONValue.int)
            case (.bool, .bool(let b)): keys = [.bool(b)]
            default: return nil
            }
            return Self.union(keys.compactMap { exact[$0] })
        }
        if let candidates = geoCandidates(condition) { return candidates }
        guard let range = condition.range else { return nil }
        switch (schema.type, range) {
        case (.integer, .number(let bounds)), (.float, .number(let bounds)):
            return slice(lower: bounds.gt ?? bounds.gte, upper: bounds.lt ?? bounds.lte)
        case (.datetime, .datetime(let bounds)):
            return slice(lower: (bounds.gt ?? bounds.gte).map(Double.init), upper: (bounds.lt ?? bounds.lte).map(Double.init))
        default:
            return nil
        }
    }

    /// Whether `candidates(condition)` are exactly the points the condition matches (a value
    /// match on a keyword, uuid, integer or bool index), so no payload needs to be read to decide.
    func answersExactly(_ condition: FieldCondition) -> Bool {
        guard let match = condition.match, condition.range == nil, condition.geoBoundingBox == nil,
              condition.geoRadius == nil, condition.geoPolygon == nil, condition.valuesCount == nil,
              condition.isEmpty == nil, condition.isNull == nil else { return false }
        switch (schema.type, match) {
        case (.keyword, .keyword), (.keyword, .anyStrings), (.uuid, .keyword), (.uuid, .anyStrings),
             (.integer, .integer), (.integer, .anyIntegers), (.bool, .bool): return true
        default: return false
        }
    }

    /// The offsets of each exact value at least `minimum` points hold, largest first: the blocks
    /// that payload-aware graph links join.
    func valueBlocks(minimum: Int) -> [[Int32]] {
        exact.values.filter { $0.count >= minimum }.sorted { $0.count != $1.count ? $0.count > $1.count : $0[0] < $1[0] }
    }

    /// Offsets of ordered values within [lower, upper] (inclusive: the filter decides the ends).
    private func slice(lower: Double?, upper: Double?) -> [Int32] {
        if mutable {
            return numbersByOffset.compactMap { offset, numbers in
                numbers.contains { number in number >= (lower ?? -.infinity) && number <= (upper ?? .infinity) } ? offset : nil
            }.sorted()
        }
        var start = 0, end = ordered.count
        if let lower {
            var high = ordered.count
            while start < high { let mid = (start + high) / 2; if ordered[mid].0 < lower { start = mid + 1 } else { high = mid } }
        }
        if let upper {
            var low = start
            while low < end { let mid = (low + end) / 2; if ordered[mid].0 <= upper { low = mid + 1 } else { end = mid } }
        }
        return Self.union([ordered[start..<max(start, end)].map(\.1)])
    }

    // MARK: Files

    /// `index-<hex of the field name>.bin` in the segment's directory.
    static func fileName(_ key: String) -> String {
        "index-" + key.utf8.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + ".bin"
    }

    /// Little-endian: u32 magic "QIDX", u32 length + the schema's JSON, u64 count + i32 offsets with
    /// a value, u64 count + (f64, i32) ordered pairs, u64 count + exact entries (u8 kind 0 string /
    /// 1 integer / 2 bool, the value, u64 count + i32 offsets), u64 count + (f64 lat, f64 lon, i32)
    /// geo points, u64 count + text tokens (u32 length + UTF-8, u64 count + i32 offsets), then the
    /// CRC-32C of all of it.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        LittleEndian.append(Self.magic, to: &out)
        let schemaJSON = JSONWriter.write(schema.json)
        LittleEndian.append(UInt32(schemaJSON.count), to: &out)
        out += schemaJSON
        LittleEndian.append(UInt64(withValue.count), to: &out)
        for offset in withValue { LittleEndian.append(offset, to: &out) }
        LittleEndian.append(UInt64(ordered.count), to: &out)
        for (value, offset) in ordered {
            LittleEndian.append(value.bitPattern, to: &out)
            LittleEndian.append(offset, to: &out)
        }
        LittleEndian.append(UInt64(exact.count), to: &out)
        for (value, offsets) in exact {
            switch value {
            case .string(let s):
                out.append(0)
                LittleEndian.append(UInt32(s.utf8.count), to: &out)
                out += Array(s.utf8)
            case .int(let n):
                out.append(1)
                LittleEndian.append(n, to: &out)
            case .bool(let b):
                out.append(2)
                out.append(b ? 1 : 0)
            default:
                preconditionFailure("exact index keys are strings, integers and booleans")
            }
            LittleEndian.append(UInt64(offsets.count), to: &out)
            for offset in offsets { LittleEndian.append(offset, to: &out) }
        }
        LittleEndian.append(UInt64(points.count), to: &out)
        for (lat, lon, offset) in points {
            LittleEndian.append(lat.bitPattern, to: &out)
            LittleEndian.append(lon.bitPattern, to: &out)
            LittleEndian.append(offset, to: &out)
        }
        LittleEndian.append(UInt64(tokens.count), to: &out)
        for (token, offsets) in tokens {
            LittleEndian.append(UInt32(token.utf8.count), to: &out)
            out += Array(token.utf8)
            LittleEndian.append(UInt64(offsets.count), to: &out)
            for offset in offsets { LittleEndian.append(offset, to: &out) }
        }
        LittleEndian.append(out.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }, to: &out)
        return out
    }

    static let magic: UInt32 = 0x5844_4951 // "QIDX"

    /// The index stored in `bytes` if it is whole and was built for `schema`; nil otherwise (then
    /// it is rebuilt).
    init?(decoding bytes: [UInt8], schema: PayloadFieldSchema) {
        guard bytes.count >= 12 else { return nil }
        let body = bytes.count - 4
        let crc = bytes.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, body) }
        guard crc == LittleEndian.read(UInt32.self, bytes, at: body), LittleEndian.read(UInt32.self, bytes, at: 0) == Self.magic else { return nil }
        var at = 4
        func u32() -> UInt32? {
            guard at + 4 <= body else { return nil }
            defer { at += 4 }
            return LittleEndian.read(UInt32.self, bytes, at: at)
        }
        func u64() -> UInt64? {
            guard at + 8 <= body else { return nil }
            defer { at += 8 }
            return LittleEndian.read(UInt64.self, bytes, at: at)
        }
        func offsets() -> [Int32]? {
            guard let count = u64(), at + Int(count) * 4 <= body else { return nil }
            var result: [Int32] = []
            result.reserveCapacity(Int(count))
            for _ in 0..<count { result.append(Int32(bitPattern: u32()!)) }
            return result
        }
        guard let schemaLength = u32(), at + Int(schemaLength) <= body,
              (try? JSONParser.parse(Array(bytes[at..<(at + Int(schemaLength))]))) == schema.json else { return nil }
        at += Int(schemaLength)
        self.schema = schema
        analyzer = Self.analyzer(schema)
        guard let withValue = offsets(), let orderedCount = u64(), at + Int(orderedCount) * 12 <= body else { return nil }
        self.withValue = withValue
        ordered.reserveCapacity(Int(orderedCount))
        for _ in 0..<orderedCount {
            let value = Double(bitPattern: u64()!)
            ordered.append((value, Int32(bitPattern: u32()!)))
        }
        guard let exactCount = u64() else { return nil }
        for _ in 0..<exactCount {
            guard at < body else { return nil }
            let kind = bytes[at]
            at += 1
            let key: JSONValue
            switch kind {
            case 0:
                guard let length = u32(), at + Int(length) <= body else { return nil }
                key = .string(String(decoding: bytes[at..<(at + Int(length))], as: UTF8.self))
                at += Int(length)
            case 1:
                guard let n = u64() else { return nil }
                key = .int(Int64(bitPattern: n))
            case 2:
                guard at < body else { return nil }
                key = .bool(bytes[at] != 0)
                at += 1
            default:
                return nil
            }
            guard let list = offsets() else { return nil }
            exact[key] = list
        }
        guard let pointCount = u64(), at + Int(pointCount) * 20 <= body else { return nil }
        for _ in 0..<pointCount {
            let lat = Double(bitPattern: u64()!), lon = Double(bitPattern: u64()!)
            points.append((lat, lon, Int32(bitPattern: u32()!)))
        }
        guard let tokenCount = u64() else { return nil }
        for _ in 0..<tokenCount {
            guard let length = u32(), at + Int(length) <= body else { return nil }
            let token = String(decoding: bytes[at..<(at + Int(length))], as: UTF8.self)
            at += Int(length)
            guard let list = offsets() else { return nil }
            tokens[token] = list
        }
        guard at == body else { return nil }
    }

    static func union(_ lists: [[Int32]]) -> [Int32] {
        if lists.count == 1 && lists[0].count < 2 { return lists[0] }
        return Array(Set(lists.joined())).sorted()
    }
}
