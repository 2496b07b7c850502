import Foundation
import QuiverJSON
import Synchronization
@testable import QuiverModel
import Testing

func filter(_ json: String) throws -> Filter {
    try #require(try PointsJSON.filter(try JSONParser.parse(Array(json.utf8)), "filter"))
}

func payload(_ json: String) throws -> JSONObject {
    try #require(try JSONParser.parse(Array(json.utf8)).objectValue)
}

func matches(_ filterJSON: String, _ payloadJSON: String, id: PointID = .number(1)) throws -> Bool {
    try filter(filterJSON).matches(id: id, payload: payload(payloadJSON), hasVector: { $0 == "v" })
}

@Suite struct FilterParsingTests {
    @Test func acceptsEveryConditionKind() throws {
        let parsed = try filter(#"""
        {"must": [
            {"key": "a", "match": {"value": "x"}}, {"key": "n", "range": {"gte": 1, "lt": 2.5}},
            {"key": "d", "range": {"gt": "2024-01-01T00:00:00Z"}}, {"is_empty": {"key": "e"}}, {"is_null": "f"},
            {"has_id": [1, "550e8400-e29b-41d4-a716-446655440000"]}, {"has_vector": "v"},
            {"nested": {"key": "arr", "filter": {"must": {"key": "b", "match": {"any": [1, 2]}}}}},
            {"key": "g", "geo_radius": {"center": {"lon": 1, "lat": 2}, "radius": 10}},
            {"key": "c", "values_count": {"gt": 1}}, {"slice": {"index": 0, "total": 2}},
            {"should": [{"key": "t", "match": {"text": "hello"}}]}
        ], "min_should": {"conditions": [{"key": "a", "match": {"except": ["y"]}}], "min_count": 1}}
        """#)
        #expect(parsed.must?.count == 12)
        #expect(parsed.must?[1] == .field(FieldCondition(key: "n", range: .number(Bounds(lt: 2.5, gte: 1)))))
        #expect(parsed.minShould?.minCount == 1)
        // A single condition is a list of one.
        #expect(try filter(#"{"must_not": {"has_vector": "v"}}"#).mustNot == [.hasVector("v")])
    }

    @Test(arguments: [
        (#"{"must": [{"key": "a", "bogus": 1}]}"#, "filter.must[0].bogus: unknown field `bogus`"),
        (#"{"must": [{"key": "a", "range": {}}]}"#, "filter.must[0].range: range has no bound"),
        (#"{"must": [{"key": "a"}]}"#, "has no test"),
        (#"{"must": [{"key": "a", "match": {"value": 1.5}}]}"#, "filter.must[0].match.value: invalid type"),
        (#"{"must": [{"key": "a", "match": {"any": [1, "x"]}}]}"#, "expected all strings or all integers"),
        (#"{"must": [{"key": "a", "range": {"gt": "yesterday"}}]}"#, "'yesterday' does not match accepted datetime format (RFC3339)"),
        (#"{"must": [{"key": "g", "geo_radius": {"center": {"lon": 200, "lat": 0}, "radius": 1}}]}"#, "lon must be in [-180, 180]"),
        (#"{"must": [{"key": "g", "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 1}]}}}]}"#, "at least 4 points"),
        (#"{"should": [{"foo": 1}]}"#, "unknown condition"),
        (#"{"min_should": {"conditions": [], "min_count": -1}}"#, "min_count"),
        (#"{"mustnt": []}"#, "unknown field `mustnt`"),
    ])
    func rejectsBadFilters(json: String, message: String) throws {
        do {
            _ = try filter(json)
            Issue.record("accepted \(json)")
        } catch let error as JSONDecodingError {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }
}

@Suite struct FilterMatchingTests {
    @Test func pathsAndArrays() throws {
        let doc = #"{"a": {"b": [1, 2]}, "list": [{"x": "p"}, {"x": "q"}], "s": "v"}"#
        #expect(try matches(#"{"must": {"key": "a.b", "match": {"value": 2}}}"#, doc))
        #expect(try matches(#"{"must": {"key": "list[].x", "match": {"value": "q"}}}"#, doc))
        #expect(try !matches(#"{"must": {"key": "list[0].x", "match": {"value": "q"}}}"#, doc))
        // Without `[]` a path does not descend into an array of objects.
        #expect(try !matches(#"{"must": {"key": "list.x", "match": {"value": "q"}}}"#, doc))
        #expect(try !matches(#"{"must": {"key": "missing", "match": {"value": "q"}}}"#, doc))
    }

    @Test func emptinessNullsAndCounts() throws {
        #expect(try matches(#"{"must": {"is_empty": {"key": "m"}}}"#, #"{}"#))
        #expect(try matches(#"{"must": {"is_empty": {"key": "m"}}}"#, #"{"m": []}"#))
        #expect(try matches(#"{"must": {"is_empty": {"key": "m"}}}"#, #"{"m": null}"#))
        #expect(try !matches(#"{"must": {"is_empty": {"key": "m"}}}"#, #"{"m": [null]}"#))
        #expect(try matches(#"{"must": {"is_null": {"key": "m"}}}"#, #"{"m": [1, null]}"#))
        #expect(try !matches(#"{"must": {"is_null": {"key": "m"}}}"#, #"{}"#))
        #expect(try matches(#"{"must": {"key": "m", "values_count": {"lt": 1}}}"#, #"{}"#))
        #expect(try matches(#"{"must": {"key": "m", "values_count": {"gte": 2, "lte": 2}}}"#, #"{"m": [1, 2]}"#))
        #expect(try !matches(#"{"must": {"key": "m", "values_count": {"gt": 2}}}"#, #"{"m": [1, 2]}"#))
    }

    @Test func matchKinds() throws {
        // Integers match integers only: not 1.0, not true.
        #expect(try !matches(#"{"must": {"key": "n", "match": {"value": 1}}}"#, #"{"n": 1.0}"#))
        #expect(try !matches(#"{"must": {"key": "n", "match": {"value": 1}}}"#, #"{"n": true}"#))
        #expect(try matches(#"{"must": {"key": "n", "match": {"any": [3, 1]}}}"#, #"{"n": [5, 1]}"#))
        #expect(try matches(#"{"must": {"key": "k", "match": {"except": ["a"]}}}"#, #"{"k": ["a", "b"]}"#))
        #expect(try !matches(#"{"must": {"key": "k", "match": {"except": ["a"]}}}"#, #"{"k": null}"#))
        // Text matches whole lowercase word tokens, in any order; phrases need them in a row.
        #expect(try matches(#"{"must": {"key": "t", "match": {"text": "FOX quick"}}}"#, #"{"t": "The quick, brown fox"}"#))
        #expect(try !matches(#"{"must": {"key": "t", "match": {"text": "ox"}}}"#, #"{"t": "The quick, brown fox"}"#))
        #expect(try matches(#"{"must": {"key": "t", "match": {"phrase": "brown fox"}}}"#, #"{"t": "The quick, brown fox"}"#))
        #expect(try !matches(#"{"must": {"key": "t", "match": {"phrase": "fox brown"}}}"#, #"{"t": "The quick, brown fox"}"#))
        #expect(try matches(#"{"must": {"key": "t", "match": {"text_any": "cat fox"}}}"#, #"{"t": "fox"}"#))
        #expect(try matches(#"{"must": {"key": "t", "match": {"prefix": "fo"}}}"#, #"{"t": "fox"}"#))
    }

    @Test func clausesIdsVectorsAndNesting() throws {
        let doc = #"{"arr": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}"#
        // Both conditions must hold on the same element.
        #expect(try !matches(#"{"must": {"nested": {"key": "arr", "filter": {"must": [{"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": "y"}}]}}}}"#, doc))
        #expect(try matches(#"{"must": {"nested": {"key": "arr[]", "filter": {"must": [{"key": "a", "match": {"value": 2}}, {"key": "b", "match": {"value": "y"}}]}}}}"#, doc))
        #expect(try matches(#"{"must": {"has_id": [1, 2]}, "must_not": {"has_vector": "w"}}"#, doc))
        #expect(try !matches(#"{"must": {"has_id": [2]}}"#, doc))
        #expect(try matches(#"{"min_should": {"conditions": [{"has_id": [1]}, {"has_vector": "v"}, {"has_id": [9]}], "min_count": 2}}"#, doc))
        #expect(try !matches(#"{"min_should": {"conditions": [{"has_id": [1]}, {"has_id": [8]}, {"has_id": [9]}], "min_count": 2}}"#, doc))
        #expect(try !matches(#"{"should": []}"#, doc))
    }

    /// Every datetime form Qdrant accepts, each the same instant (2000-07-16 23:50:24.777820 UTC)
    /// or a documented one; and forms it refuses.
    @Test func datetimeForms() {
        let instant: Int64 = 963_791_424_777_820
        for text in ["2000-07-17 09:50:24.777820 +1000", "2000-07-17T09:50:24.777820+10:00", "2000-07-17T09:50:24.777820+1000",
                     "2000-07-17 09:50:24.77782+10", "2000-07-17T09:50:24.777820123 +10:00", "2000-07-16T23:50:24.777820Z",
                     "2000-07-16T23:50:24.777820z", "2000-07-16 23:50:24.777820 UTC", "  2000-07-16T23:50:24.777820",
                     "2000-07-16 23:50:24.777820 Z", "2000-07-16 23:50:24.777820  UTC", "2000-07-17T09:50:24.777820  +10:00", "2000-07-16T19:50:24.777820-04:00", "2000-7-16T23:50:24.777820"] {
            #expect(Datetime.parse(text) == instant, "\(text)")
        }
        #expect(Datetime.parse("2000-07-17T09:50:24 +10:00") == instant / 1_000_000 * 1_000_000)
        #expect(Datetime.parse("2000-07-16 23:50") == (instant / 60_000_000) * 60_000_000)
        #expect(Datetime.parse("2000-07-16") == (instant / 86_400_000_000) * 86_400_000_000)
        #expect(Datetime.parse("2000-07-17T09:50:24+10 00") == instant / 1_000_000 * 1_000_000)
        #expect(Datetime.parse("2000-07-16t23:50:24utc ") == instant / 1_000_000 * 1_000_000)
        #expect(Datetime.parse("2000-07-17t09:50:24+1000") == instant / 1_000_000 * 1_000_000)
        #expect(Datetime.parse("2000-07-16T23:50:60Z") == (instant / 60_000_000 + 1) * 60_000_000)
        for text in ["2000-07-16T23:50+01:00", "2000-07-16+01:00", "2000-02-30", "2001-02-29", "2000-07-16T24:00:00",
                     "2000-07-16T23:50:61", "2024-01-01t10:00", "2024-01-01t10:00:00", "2024-01-01t10:00:00+05", "2000-07-17T09:50:24+10:00:30", "2000-07-16T23:50:24.", "2000-07-16T23:50:24+1", "2000-07-16T23:50:24+01:0",
                     "2000-07-16T23:50:24 ", "2000-07-16X23:50:24", "20000-07-16", "2000-07-16T23:50:24 UTC+1", ""] {
            #expect(Datetime.parse(text) == nil, "\(text)")
        }
        #expect(Datetime.parse("2000-02-29") != nil)
    }

    @Test func rangesGeoAndDatetimes() throws {
        #expect(try matches(#"{"must": {"key": "d", "range": {"gte": "2024-03-01T10:00:00+02:00", "lt": "2024-03-01 09:00"}}}"#, #"{"d": "2024-03-01T08:30:00Z"}"#))
        #expect(Datetime.parse("1970-01-01") == 0)
        #expect(Datetime.parse("1970-01-01T00:00:01.5Z") == 1_500_000)
        #expect(Datetime.parse("2024-02-30x") == nil)
        #expect(try matches(#"{"must": {"key": "g", "geo_radius": {"center": {"lon": 13.4, "lat": 52.52}, "radius": 300000}}}"#, #"{"g": {"lon": 14.42, "lat": 50.08}}"#))
        #expect(try !matches(#"{"must": {"key": "g", "geo_radius": {"center": {"lon": 13.4, "lat": 52.52}, "radius": 200000}}}"#, #"{"g": {"lon": 14.42, "lat": 50.08}}"#))
        let square = #"{"points": [{"lon": 0, "lat": 0}, {"lon": 10, "lat": 0}, {"lon": 10, "lat": 10}, {"lon": 0, "lat": 10}, {"lon": 0, "lat": 0}]}"#
        let hole = #"{"points": [{"lon": 4, "lat": 4}, {"lon": 6, "lat": 4}, {"lon": 6, "lat": 6}, {"lon": 4, "lat": 6}, {"lon": 4, "lat": 4}]}"#
        let polygon = #"{"must": {"key": "g", "geo_polygon": {"exterior": \#(square), "interiors": [\#(hole)]}}}"#
        #expect(try matches(polygon, #"{"g": {"lon": 2, "lat": 2}}"#))
        #expect(try !matches(polygon, #"{"g": {"lon": 5, "lat": 5}}"#))
        #expect(try matches(#"{"must": {"key": "g", "geo_bounding_box": {"top_left": {"lon": 170, "lat": 10}, "bottom_right": {"lon": -170, "lat": -10}}}}"#, #"{"g": {"lon": 179, "lat": 0}}"#))
    }
}

@Suite struct TextAnalyzerTests {
    func analyzer(_ json: String) throws -> TextAnalyzer {
        try TextAnalyzer(params: try payload(json))
    }

    @Test func tokenizersAndOptions() throws {
        #expect(TextAnalyzer.standard.tokens("Hello, wide-World 42!") == ["hello", "wide", "world", "42"])
        #expect(try analyzer(#"{"type": "text", "tokenizer": "whitespace"}"#).tokens("Hello, wide-World") == ["hello,", "wide-world"])
        #expect(try analyzer(#"{"type": "text", "lowercase": false}"#).tokens("Hello World") == ["Hello", "World"])
        #expect(try analyzer(#"{"type": "text", "min_token_len": 3, "max_token_len": 5}"#).tokens("a bb ccc dddddd eeeee") == ["ccc", "eeeee"])
        #expect(try analyzer(#"{"type": "text", "stopwords": {"languages": ["english"], "custom": ["Fox"]}}"#).tokens("The quick fox") == ["quick"])
        #expect(try analyzer(#"{"type": "text", "ascii_folding": true}"#).tokens("Crème brûlée") == ["creme", "brulee"])
    }

    /// Stems as Qdrant's stemmer (rust-stemmers) gives them; the integration suite compares
    /// thousands more with its Python binding.
    @Test func englishStemming() throws {
        let pairs = [("caresses", "caress"), ("ponies", "poni"), ("ties", "tie"), ("cries", "cri"), ("gaps", "gap"), ("gas", "gas"), ("kiwis", "kiwi"),
                     ("feed", "feed"), ("agreed", "agre"), ("plastered", "plaster"), ("motoring", "motor"), ("sing", "sing"), ("hopping", "hop"),
                     ("hoping", "hope"), ("filing", "file"), ("happy", "happi"), ("cry", "cri"), ("say", "say"), ("relational", "relat"),
                     ("generalization", "general"), ("generously", "generous"), ("communication", "communic"), ("arsenal", "arsenal"),
                     ("skies", "sky"), ("dying", "die"), ("news", "news"), ("proceeding", "proceed"), ("exceeded", "exceed"),
                     ("conditional", "condit"), ("electricity", "electr"), ("hopefulness", "hope"), ("adjustment", "adjust"),
                     ("adoption", "adopt"), ("running", "run"), ("runs", "run"), ("ran", "ran"), ("fly", "fli"), ("flies", "fli"), ("organization", "organ")]
        let english = try #require(Stemmer(language: "english"))
        for (word, stem) in pairs { #expect(english.stem(word) == stem, "\(word)") }
        // Stopwords go before stemming, token lengths are checked after it.
        let stemming = try analyzer(#"{"type": "text", "stemmer": {"type": "snowball", "language": "english"}, "stopwords": "english", "min_token_len": 4}"#)
        // ("Flies" is long enough, its stem "fli" is not.)
        #expect(stemming.tokens("The Flies were HOPEFULNESS home") == ["hope", "home"])
    }

    /// The prefix tokenizer as Qdrant's tests spell it out, and text conditions on it: a query
    /// word cut to the maximum length, stopwords kept, matches the stored words it begins.
    @Test func prefixTokenizer() throws {
        let prefix = try analyzer(#"{"type": "text", "tokenizer": "prefix", "max_token_len": 4}"#)
        #expect(prefix.prefixTokens("hello, мир!") == ["h", "he", "hel", "hell", "м", "ми", "мир"])
        #expect(prefix.queryTokens("hello, мир!") == ["hell", "мир"])
        // Characters are Unicode scalars, as Qdrant counts them: a combining accent written apart
        // ends a word; a Devanagari vowel sign (alphabetic) does not, and counts as one.
        #expect(prefix.queryTokens("cafe\u{301}s") == ["cafe", "s"])
        #expect(prefix.queryTokens("किताबें") == ["किता"])
        #expect(Match.text("hello").matches(.string("Hello world"), analyzer: prefix))
        #expect(Match.text("wor").matches(.string("Hello world"), analyzer: prefix))
        #expect(!Match.text("orld").matches(.string("Hello world"), analyzer: prefix))
        let stopwords = try analyzer(#"{"type": "text", "tokenizer": "prefix", "stopwords": "english"}"#)
        #expect(Match.text("the").matches(.string("A theory"), analyzer: stopwords))
        #expect(!Match.text("theory").matches(.string("the other"), analyzer: stopwords))
    }

    /// Other languages: Snowball's stemmers and Qdrant's stopword lists, by name or code.
    @Test func otherLanguages() throws {
        let german = try analyzer(#"{"type": "text", "stemmer": {"type": "snowball", "language": "de"}, "stopwords": "german"}"#)
        #expect(german.tokens("Die Häuser und die Kinder spielten") == ["haus", "kind", "spielt"])
        let french = try analyzer(#"{"type": "text", "stemmer": {"type": "snowball", "language": "french"}, "stopwords": {"languages": ["fr", "english"]}}"#)
        #expect(french.tokens("Les enfants mangeaient des pommes and the") == ["enfant", "mang", "pomm"])
        // Russian "ё" is a letter of its own, as in Qdrant's stemmer: "её" stays, "ещё" too.
        let russian = try #require(Stemmer(language: "ru"))
        #expect(["её", "ещё", "всё", "книгами"].map(russian.stem) == ["её", "ещё", "всё", "книг"])
        // The same stemmer on many threads at once.
        let stems = Mutex<Set<String>>([])
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let stem = russian.stem(i % 2 == 0 ? "книгами" : "ещё")
            stems.withLock { _ = $0.insert(stem) }
        }
        #expect(stems.withLock { $0 } == ["книг", "ещё"])
    }

    @Test func unsupportedSettingsAreErrors() {
        #expect(throws: JSONDecodingError.self) { try analyzer(#"{"type": "text", "stemmer": {"type": "snowball", "language": "armenian"}}"#) }
        #expect(throws: JSONDecodingError.self) { try analyzer(#"{"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}"#) }
        #expect(throws: JSONDecodingError.self) { try analyzer(#"{"type": "text", "stopwords": "klingon"}"#) }
        #expect(throws: JSONDecodingError.self) { try analyzer(#"{"type": "text", "stopwords": "English"}"#) }
        #expect(throws: JSONDecodingError.self) { try analyzer(#"{"type": "text", "stopwords": "romanian"}"#) }
    }

    @Test func indexSettingsChangeTextMatching() throws {
        let doc = try payload(#"{"t": "Hello wonderful World"}"#)
        func check(_ filterJSON: String, _ analyzers: [String: TextAnalyzer]) throws -> Bool {
            try filter(filterJSON).binding(analyzers).matches(id: nil, payload: doc, hasVector: { _ in false })
        }
        let text = #"{"must": {"key": "t", "match": {"text": "hello WORLD"}}}"#
        #expect(try check(text, [:]))
        #expect(try !check(text, ["t": try analyzer(#"{"type": "text", "lowercase": false}"#)]))
        let prefix = #"{"must": {"key": "t", "match": {"text": "wond"}}}"#
        #expect(try !check(prefix, [:]))
        #expect(try check(prefix, ["t": try analyzer(#"{"type": "text", "tokenizer": "prefix"}"#)]))
        // Bound in nested filters too, but only for the key the index is on.
        #expect(try check(#"{"should": {"must": {"key": "t", "match": {"text_any": "wond nothing"}}}}"#, ["t": try analyzer(#"{"type": "text", "tokenizer": "prefix"}"#)]))
        #expect(try !check(prefix, ["other": try analyzer(#"{"type": "text", "tokenizer": "prefix"}"#)]))
    }
}
