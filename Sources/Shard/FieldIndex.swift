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

    init(schema: PayloadFieldSchema, key: String, segment: ImmutableSegment) {
        self.schema = schema
        for offset in 0..<segment.totalCount {
            guard let bytes = segment.payloadBytes(at: offset) else { continue }
            let root = JSONValue.object(AppendableSegment.decode(bytes) ?? JSONObject())
            var indexed = false
            for value in PayloadPath.values(key, in: root) {
                if case .array(let elements) = value {
                    for element in elements { indexed = add(element, Int32(offset)) || indexed }
                } else {
                    indexed = add(value, Int32(offset)) || indexed
                }
            }
            if indexed { withValue.append(Int32(offset)) }
        }
        ordered.sort { $0.0 < $1.0 }
    }

    private mutating func add(_ value: JSONValue, _ offset: Int32) -> Bool {
        switch (schema.type, value) {
        case (.keyword, .string), (.bool, .bool):
            exact[value, default: []].append(offset)
        case (.uuid, .string(let s)):
            guard let id = PointID(uuidString: s) else { return false }
            exact[.string(id.description), default: []].append(offset)
        case (.integer, .int):
            exact[value, default: []].append(offset)
            ordered.append((value.doubleValue!, offset))
        case (.integer, .uint), (.integer, .double), (.float, .int), (.float, .uint), (.float, .double):
            ordered.append((value.doubleValue!, offset))
        case (.datetime, .string(let s)):
            guard let micros = Datetime.parse(s) else { return false }
            ordered.append((Double(micros), offset))
        default:
            return false
        }
        return true
    }

    /// Offsets (ascending, unique) that include every point `condition` matches, or nil when this
    /// index cannot narrow it down.
    func candidates(_ condition: FieldCondition) -> [Int32]? {
        if let match = condition.match {
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

    /// Offsets of ordered values within [lower, upper] (inclusive: the filter decides the ends).
    private func slice(lower: Double?, upper: Double?) -> [Int32] {
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

    static func union(_ lists: [[Int32]]) -> [Int32] {
        if lists.count == 1 && lists[0].count < 2 { return lists[0] }
        return Array(Set(lists.joined())).sorted()
    }
}
