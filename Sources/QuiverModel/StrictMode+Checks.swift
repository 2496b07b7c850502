import QuiverJSON

/// A request that strict mode refuses; `message` is Qdrant's text ("… . Help: …" where Qdrant
/// gives help). It is a 400, as in Qdrant.
public struct StrictModeViolation: Error, Sendable, Equatable {
    public let message: String

    init(_ error: String, help: String? = nil) {
        message = help.map { "\(error). Help: \($0)" } ?? error
    }
}

/// The checks of strict mode, each a pure function of the limits and what a request asks. The
/// caller applies them only when `enabled` is true (``StrictModeConfig/enforced``), in Qdrant's
/// order: batch size, then per request the limit, the filter, `exact` and the search parameters,
/// then the timeout.
extension StrictModeConfig {
    /// The limits in force: this configuration when `enabled` is true, nil otherwise.
    public var enforced: StrictModeConfig? { enabled == true ? self : nil }

    static func atMost(_ value: Double, _ limit: Double?, _ name: String) throws(StrictModeViolation) {
        guard let limit, value > limit else { return }
        let v = display(value), l = display(limit)
        throw StrictModeViolation("Limit exceeded \(v) > \(l) for \"\(name)\"", help: "Reduce the \"\(name)\" parameter to or below \(l).")
    }

    static func atMost(_ value: Int, _ limit: Int?, _ name: String) throws(StrictModeViolation) {
        try atMost(Double(value), limit.map(Double.init), name)
    }

    /// A number as Rust's `Display` prints it: integral values without a fraction.
    static func display(_ value: Double) -> String { plainDecimal(value.description) }

    /// `limit` of a search, query, scroll or facet (`max_query_limit`).
    public func checkLimit(_ limit: Int?) throws(StrictModeViolation) {
        guard let limit else { return }
        try Self.atMost(limit, maxQueryLimit, "limit")
    }

    /// The `timeout` query parameter, in seconds (`max_timeout`).
    public func checkTimeout(_ seconds: Int?) throws(StrictModeViolation) {
        guard let seconds else { return }
        try Self.atMost(seconds, maxTimeout, "timeout")
    }

    /// The number of searches in a batch (`search_max_batchsize`).
    public func checkBatch(_ count: Int) throws(StrictModeViolation) {
        try Self.atMost(count, searchMaxBatchsize, "search batch size")
    }

    /// `exact` of a search, count or facet (`search_allow_exact`).
    public func checkExact(_ exact: Bool) throws(StrictModeViolation) {
        if exact, searchAllowExact == false {
            throw StrictModeViolation("Exact search disabled!", help: "Set exact=false.")
        }
    }

    /// The sparse vectors and multivectors of points being written, within `sparse_config`'s
    /// `max_length` and `multivector_config`'s `max_vectors` for their names.
    public func checkVectorSizes(_ points: [PointStruct]) throws(StrictModeViolation) {
        for point in points {
            for name in point.sparse.keys.sorted() {
                guard let max = sparseConfig?[name]?.maxLength, point.sparse[name]!.count > max else { continue }
                throw StrictModeViolation("Sparse vector '\(name)' has a limit of \(max) indices, but \(point.sparse[name]!.count) were provided!")
            }
            for name in point.multi.keys.sorted() {
                guard let max = multivectorConfig?[name]?.maxVectors, point.multi[name]!.count > max else { continue }
                throw StrictModeViolation("Multivector '\(name)' has a limit of \(max) vectors, but \(point.multi[name]!.count) were provided!")
            }
        }
    }

    /// The search parameters: `exact`, `hnsw_ef`, `quantization.oversampling`.
    public func checkSearchParams(_ params: SearchParams) throws(StrictModeViolation) {
        if let oversampling = params.quantizationOversampling { try Self.atMost(oversampling, searchMaxOversampling, "oversampling") }
        if let ef = params.hnswEf { try Self.atMost(ef, searchMaxHnswEf, "hnsw_ef") }
        try checkExact(params.exact)
    }

    /// A read filter (`unindexed_filtering_retrieve`) or a write filter (`unindexed_filtering_update`),
    /// then `filter_max_conditions` and `condition_max_size`.
    public func checkFilter(_ filter: Filter?, schema: [String: PayloadFieldSchema], update: Bool) throws(StrictModeViolation) {
        guard let filter else { return }
        if (update ? unindexedFilteringUpdate : unindexedFilteringRetrieve) == false,
           let (key, types) = filter.firstUnindexedField(schema: schema) {
            throw StrictModeViolation("Index required but not found for \"\(key)\" of one of the following types: [\(types.joined(separator: ", "))]",
                                      help: "Create an index for this key or use a different filter.")
        }
        if let limit = filterMaxConditions {
            let count = filter.conditionCount
            if count > limit {
                throw StrictModeViolation("Filter condition limit reached (\(count) > \(limit))", help: "Reduce the amount of conditions of your filter.")
            }
        }
        if let limit = conditionMaxSize {
            let size = filter.largestConditionSize
            if size > limit {
                throw StrictModeViolation("Condition size limit reached (\(size) > \(limit))", help: "Reduce the size of your condition.")
            }
        }
    }

    /// The number of points one upsert (`"upsert limit"`) or vector update (`"update limit"`) carries.
    public func checkUpdateBatch(_ count: Int, upsert: Bool) throws(StrictModeViolation) {
        try Self.atMost(count, upsertMaxBatchsize, upsert ? "upsert limit" : "update limit")
    }

    /// What the collection holds already, before an upsert or vector update adds to it (a payload
    /// update checks only the payload size): refused once a limit is reached.
    public func checkCollectionSize(points: Int, vectorBytes: Int, payloadBytes: Int, payloadOnly: Bool) throws(StrictModeViolation) {
        if !payloadOnly, let limit = maxCollectionVectorSizeBytes, vectorBytes >= limit {
            throw StrictModeViolation("Max vector storage size limit of \(Self.megabytes(limit))MB reached!")
        }
        if let limit = maxCollectionPayloadSizeBytes, payloadBytes >= limit {
            throw StrictModeViolation("Max payload storage size limit of \(Self.megabytes(limit))MB reached!")
        }
        if !payloadOnly, let limit = maxPointsCount, points >= limit {
            throw StrictModeViolation("Max points count limit of \(limit) reached!")
        }
    }

    /// A new payload index when the collection has `existing` (`max_payload_index_count`).
    public func checkPayloadIndexCount(existing: Int) throws(StrictModeViolation) {
        if let limit = maxPayloadIndexCount, existing >= limit {
            throw StrictModeViolation("Collection already has the maximum number of payload indices (\(limit))",
                                      help: "Please delete an existing index before creating a new one.")
        }
    }

    /// An update that adds data while the process's resident memory (`percent` of what it may
    /// use, nil when unknown) is at `max_resident_memory_percent`; deprecated in favour of the
    /// node-wide quota, which it can only tighten.
    public func checkResidentMemory(_ percent: UInt8?) throws(StrictModeViolation) {
        guard let limit = maxResidentMemoryPercent, let percent, Int(percent) >= limit else { return }
        throw StrictModeViolation("Resident memory usage is at \(percent)% of total memory, exceeding the configured limit of \(limit)%",
                                  help: "Reduce memory usage (e.g. delete points or drop collections), or raise "
                                      + "`max_resident_memory_percent` in the strict mode config of this collection.")
    }

    /// Bytes as megabytes, a 32-bit float printed as Rust's `Display` prints it.
    static func megabytes(_ bytes: Int) -> String {
        plainDecimal((Float(bytes) / 1_048_576).description)
    }

    /// The shortest round-trip digits of a float (`description`) without an exponent and without a
    /// `.0` on integral values, as Rust's `Display` writes floats: `6.1035156e-05` is
    /// `0.000061035156`, `1e+20` is `100000000000000000000`, `2.0` is `2`.
    static func plainDecimal(_ text: String) -> String {
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        let negative = mantissa.hasPrefix("-")
        if negative { mantissa = mantissa.dropFirst() }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digits = String(parts[0]) + (parts.count > 1 ? String(parts[1]) : "")
        var point = parts[0].count + exponent
        if point <= 0 {
            digits = String(repeating: "0", count: 1 - point) + digits
            point = 1
        } else if point > digits.count {
            digits += String(repeating: "0", count: point - digits.count)
        }
        var integer = String(digits.prefix(point)), fraction = String(digits.dropFirst(point))
        while fraction.hasSuffix("0") { fraction.removeLast() }
        while integer.count > 1, integer.hasPrefix("0") { integer.removeFirst() }
        return (negative ? "-" : "") + integer + (fraction.isEmpty ? "" : "." + fraction)
    }
}

// MARK: Filter measures

extension Filter {
    var allConditions: [Condition] { (must ?? []) + (mustNot ?? []) + (should ?? []) + (minShould?.conditions ?? []) }

    /// Leaf conditions, counted inside nested filters and `nested` conditions (`filter_max_conditions`).
    public var conditionCount: Int {
        allConditions.reduce(0) { total, condition in
            switch condition {
            case .filter(let inner), .nested(_, let inner): total + inner.conditionCount
            case .field, .isEmpty, .isNull, .hasID, .hasVector, .slice, .owner: total + 1
            }
        }
    }

    /// The largest list in one condition: `any`/`except` values or `has_id` ids (`condition_max_size`).
    public var largestConditionSize: Int {
        allConditions.reduce(0) { largest, condition in
            switch condition {
            case .filter(let inner), .nested(_, let inner): max(largest, inner.largestConditionSize)
            case .hasID(let ids): max(largest, ids.count)
            case .field(let field):
                switch field.match {
                case .anyStrings(let v)?, .exceptStrings(let v)?: max(largest, v.count)
                case .anyIntegers(let v)?, .exceptIntegers(let v)?: max(largest, v.count)
                default: largest
                }
            case .isEmpty, .isNull, .hasVector, .slice, .owner: largest
            }
        }
    }

    /// The first field whose condition no payload index can serve, with the index types that
    /// could, named and sorted as Qdrant names them. Conditions are visited must, must_not,
    /// should, min_should; a `nested` condition's fields are `key[].field`.
    public func firstUnindexedField(schema: [String: PayloadFieldSchema], prefix: String = "") -> (String, [String])? {
        for condition in allConditions {
            switch condition {
            case .filter(let inner):
                if let found = inner.firstUnindexedField(schema: schema, prefix: prefix) { return found }
            case .nested(let key, let inner):
                let path = prefix + key
                if let found = inner.firstUnindexedField(schema: schema, prefix: (path.hasSuffix("[]") ? path : path + "[]") + ".") {
                    return found
                }
            case .hasID, .hasVector, .slice, .owner:
                continue
            case .isEmpty(let key), .isNull(let key):
                if let found = Self.unindexed(prefix + key, IndexCapability.allCases, schema) { return found }
            case .field(let field):
                if let found = Self.unindexed(prefix + field.key, field.requiredCapabilities, schema) { return found }
            }
        }
        return nil
    }

    static func unindexed(_ key: String, _ needed: [IndexCapability], _ schema: [String: PayloadFieldSchema]) -> (String, [String])? {
        guard !needed.isEmpty else { return nil }
        if let index = schema[key], needed.contains(where: index.capabilities.contains) { return nil }
        return (key, Array(Set(needed.map(\.indexName))).sorted())
    }
}

/// What a payload index can answer, as the strict-mode check of unindexed filters sees it; each
/// capability is named by the index type (and setting) that gives it.
enum IndexCapability: CaseIterable {
    case keywordMatch, keywordPrefix, integerMatch, integerRange, floatRange, boolMatch, geo, datetimeRange, uuidMatch, text, phrase

    var indexName: String {
        switch self {
        case .keywordMatch: "keyword"
        case .keywordPrefix: "keyword (with prefix: true)"
        case .integerMatch, .integerRange: "integer"
        case .floatRange: "float"
        case .boolMatch: "bool"
        case .geo: "geo"
        case .datetimeRange: "datetime"
        case .uuidMatch: "uuid"
        case .text: "text"
        case .phrase: "text (with phrase_matching: true)"
        }
    }
}

extension PayloadFieldSchema {
    var capabilities: Set<IndexCapability> {
        func flag(_ name: String, default value: Bool) -> Bool {
            if let raw = params?[name], case .bool(let b) = raw { return b }
            return value
        }
        switch type {
        case .keyword: return flag("prefix", default: false) ? [.keywordMatch, .keywordPrefix] : [.keywordMatch]
        case .integer:
            var result: Set<IndexCapability> = []
            if flag("lookup", default: true) { result.insert(.integerMatch) }
            if flag("range", default: true) { result.insert(.integerRange) }
            return result
        case .float: return [.floatRange]
        case .bool: return [.boolMatch]
        case .geo: return [.geo]
        case .datetime: return [.datetimeRange]
        case .uuid: return [.uuidMatch]
        case .text: return flag("phrase_matching", default: false) ? [.text, .phrase] : [.text]
        }
    }
}

extension FieldCondition {
    /// The capabilities any one of which lets an index serve this condition.
    var requiredCapabilities: [IndexCapability] {
        if let match {
            switch match {
            case .keyword(let s): return PointID(uuidString: s) != nil ? [.keywordMatch, .uuidMatch] : [.keywordMatch]
            case .integer: return [.integerMatch]
            case .anyIntegers(let v), .exceptIntegers(let v): return v.isEmpty ? [] : [.integerMatch]
            case .bool: return [.boolMatch]
            case .text, .textAny: return [.text]
            case .phrase: return [.phrase]
            case .prefix: return [.keywordPrefix]
            case .anyStrings(let v), .exceptStrings(let v):
                if v.isEmpty { return [] }
                return v.allSatisfy { PointID(uuidString: $0) != nil } ? [.keywordMatch, .uuidMatch] : [.keywordMatch]
            }
        }
        if let range {
            switch range {
            case .number: return [.floatRange, .integerRange]
            case .datetime: return [.datetimeRange]
            }
        }
        if geoRadius != nil || geoBoundingBox != nil || geoPolygon != nil { return [.geo] }
        // values_count, is_empty, is_null: any index.
        return IndexCapability.allCases
    }
}
