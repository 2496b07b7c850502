import QuiverJSON
@testable import QuiverModel
import Testing

@Suite struct StrictModeTests {
    func filter(_ json: String) throws -> Filter {
        try #require(try PointsJSON.filter(JSONParser.parse(json), "filter"))
    }

    func schema(_ entries: [String: String]) throws -> [String: PayloadFieldSchema] {
        var result: [String: PayloadFieldSchema] = [:]
        for (key, json) in entries {
            let value = try JSONParser.parse(json)
            result[key] = try PointsJSON.fieldSchema(value, "field_schema")
        }
        return result
    }

    @Test func numbersPrintAsRustDisplays() {
        #expect(StrictModeConfig.plainDecimal("2.0") == "2")
        #expect(StrictModeConfig.plainDecimal("0.2") == "0.2")
        #expect(StrictModeConfig.plainDecimal("6.1035156e-05") == "0.000061035156")
        #expect(StrictModeConfig.plainDecimal("1e+20") == "100000000000000000000")
        #expect(StrictModeConfig.plainDecimal("-1.5e-3") == "-0.0015")
        #expect(StrictModeConfig.megabytes(1_048_576) == "1")
        #expect(StrictModeConfig.megabytes(64) == "0.000061035156")
    }

    @Test func limitsNameTheParameter() {
        var limits = StrictModeConfig()
        limits.maxQueryLimit = 4
        #expect(throws: StrictModeViolation("Limit exceeded 5 > 4 for \"limit\"", help: "Reduce the \"limit\" parameter to or below 4.")) {
            try limits.checkLimit(5)
        }
        #expect(throws: Never.self) { try limits.checkLimit(4) }
        #expect(throws: Never.self) { try limits.checkLimit(nil) }
        limits.searchMaxOversampling = 2
        var params = SearchParams()
        params.quantizationOversampling = 2.5
        #expect(throws: StrictModeViolation("Limit exceeded 2.5 > 2 for \"oversampling\"", help: "Reduce the \"oversampling\" parameter to or below 2.")) {
            try limits.checkSearchParams(params)
        }
        params.quantizationOversampling = nil
        #expect(throws: Never.self) { try limits.checkSearchParams(params) }
        #expect(limits.enforced == nil)
        limits.enabled = true
        #expect(limits.enforced == limits)
    }

    @Test func residentMemoryIsRefusedAtItsLimitWithoutAMargin() {
        var limits = StrictModeConfig()
        #expect(throws: Never.self) { try limits.checkResidentMemory(99) }
        limits.maxResidentMemoryPercent = 40
        #expect(throws: Never.self) { try limits.checkResidentMemory(39) }
        #expect(throws: Never.self) { try limits.checkResidentMemory(nil) }
        #expect(throws: StrictModeViolation.self) { try limits.checkResidentMemory(40) }
        do {
            try limits.checkResidentMemory(41)
        } catch {
            #expect(error.message.hasPrefix("Resident memory usage is at 41% of total memory, exceeding the configured limit of 40%. Help: "))
        }
    }

    @Test func unindexedFieldsAndTheIndexesThatWouldServeThem() throws {
        let indexes = try schema(["kw": #""keyword""#, "n": #"{"type": "integer", "range": false}"#, "arr[].x": #""float""#,
                                  "t": #"{"type": "text"}"#])
        let cases: [(String, (String, [String])?)] = [
            (#"{"must": [{"key": "kw", "match": {"value": "a"}}]}"#, nil),
            (#"{"must": [{"key": "kw", "match": {"value": "0b8c1a62-9f0e-4a6b-8d1d-2a6c4e8b9f10"}}]}"#, nil),
            (#"{"must": [{"key": "other", "match": {"value": "0b8c1a62-9f0e-4a6b-8d1d-2a6c4e8b9f10"}}]}"#, ("other", ["keyword", "uuid"])),
            (#"{"must": [{"key": "n", "range": {"gt": 1}}]}"#, ("n", ["float", "integer"])),
            (#"{"must": [{"key": "n", "match": {"any": [1, 2]}}]}"#, nil),
            (#"{"must": [{"key": "kw", "match": {"prefix": "a"}}]}"#, ("kw", ["keyword (with prefix: true)"])),
            (#"{"must": [{"key": "t", "match": {"phrase": "a b"}}]}"#, ("t", ["text (with phrase_matching: true)"])),
            (#"{"must": [{"key": "d", "range": {"gt": "2024-01-01"}}]}"#, ("d", ["datetime"])),
            (#"{"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "x", "range": {"lt": 2}}]}}}]}"#, nil),
            (#"{"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "y", "range": {"lt": 2}}]}}}]}"#, ("arr[].y", ["float", "integer"])),
            (#"{"should": [{"has_id": [1]}, {"must": [{"key": "g", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}}]}]}"#, ("g", ["geo"])),
            (#"{"must_not": [{"is_null": {"key": "kw"}}, {"key": "kw", "match": {"any": []}}]}"#, nil),
            (#"{"must": [{"is_empty": {"key": "z"}}]}"#, ("z", ["bool", "datetime", "float", "geo", "integer", "keyword",
                                                                "keyword (with prefix: true)", "text", "text (with phrase_matching: true)", "uuid"])),
        ]
        for (json, expected) in cases {
            let found = try filter(json).firstUnindexedField(schema: indexes)
            #expect(found?.0 == expected?.0 && found?.1 == expected?.1, "\(json)")
        }
    }

    @Test func filterSizes() throws {
        let f = try filter(#"{"must": [{"key": "a", "match": {"any": ["x", "y", "z"]}}, {"has_id": [1, 2, 3, 4]}], "should": [{"must": [{"key": "b", "match": {"value": 1}}]}], "min_should": {"conditions": [{"nested": {"key": "n", "filter": {"must": [{"is_empty": {"key": "q"}}]}}}], "min_count": 1}}"#)
        #expect(f.conditionCount == 4)
        #expect(f.largestConditionSize == 4)
        var limits = StrictModeConfig()
        limits.filterMaxConditions = 3
        #expect(throws: StrictModeViolation("Filter condition limit reached (4 > 3)", help: "Reduce the amount of conditions of your filter.")) {
            try limits.checkFilter(f, schema: [:], update: false)
        }
        limits.filterMaxConditions = nil
        limits.conditionMaxSize = 3
        #expect(throws: StrictModeViolation("Condition size limit reached (4 > 3)", help: "Reduce the size of your condition.")) {
            try limits.checkFilter(f, schema: [:], update: true)
        }
    }
}
