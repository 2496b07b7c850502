import QuiverJSON
@testable import QuiverModel
import Testing

/// The multilingual tokenizer against the token lists Qdrant's own tests and its segmenter give.
@Suite struct MultilingualTokenizerTests {
    func analyzer(_ extra: String = "") throws -> TextAnalyzer {
        let json = #"{"type": "text", "tokenizer": "multilingual""# + extra + "}"
        return try TextAnalyzer(params: try #require(try JSONParser.parse(Array(json.utf8)).objectValue))
    }

    @Test(arguments: [
        ("This is a test", ["this", "is", "a", "test"]),
        ("This is english text. It's being used within Qdrant's code in a unit test.",
         ["this", "is", "english", "text", "it", "s", "being", "used", "within", "qdrant", "s", "code", "in", "a", "unit", "test"]),
        ("Dies ist ein Test", ["dies", "ist", "ein", "test"]),
        ("It's 3.14 o'clock", ["it", "s", "o", "clock"]),
        ("data-driven e-mail", ["data", "driven", "e", "mail"]),
        ("camelCaseWord snake_case_word", ["camelcaseword", "snake", "case", "word"]),
        ("hello.world C++ U.S.A. user@example.com", ["hello", "world", "c", "u", "s", "a", "user", "example", "com"]),
        ("a=b x^2 foo|bar $100 ~tilde <tag>", ["a=b", "x^2", "foo|bar", "~tilde", "<tag>"]),
        ("abc123 v2 2024 29.3°F", ["abc123", "v2", "3°f"]),
        ("can’t “quoted”", ["can", "t", "quoted"]),
        ("Café Über ﬁle Œuvre", ["cafe", "uber", "file", "oeuvre"]),
        ("ΣΟΦΟΣ σοφός", ["σοφοσ", "σοφοσ"]),
        ("What are you waiting for?", ["what", "are", "you", "waiting", "for"]),
        ("これはテストです", ["これ", "は", "テスト", "です"]),
        ("本日の日付は", ["本日", "の", "日付", "は"]),
        ("我爱北京天安门", ["我", "爱", "北京", "天安门"]),
        ("มาทำงานกันเถอะ", ["มา", "ทางาน", "กน", "เถอะ"]),
    ])
    func tokensAsQdrantGivesThem(text: String, expected: [String]) throws {
        #expect(try analyzer().tokens(text) == expected)
    }

    @Test func japaneseTextKeepsCaseWithoutLowercaseAndChecksStopwordsAsWritten() throws {
        let text = "日本語のテキストです。Qdrantのコードで単体テストで使用されています。"
        let tokens = try analyzer(#", "lowercase": false"#).tokens(text)
        // Qdrant's vaporetto model splits 日本|語; ICU's dictionary keeps 日本語 whole.
        #expect(tokens.prefix(5) == ["日本語", "の", "テキスト", "です", "Qdrant"])
        #expect(tokens.contains("コード") && tokens.contains("使用"))
        #expect(try analyzer().tokens(text).contains("qdrant"))
        #expect(try analyzer(#", "stopwords": {"custom": ["の", "は"]}"#).tokens("本日の日付は") == ["本日", "日付"])
    }

    @Test func tokenOptionsApplyAfterSegmentation() throws {
        #expect(try analyzer(#", "stemmer": {"type": "snowball", "language": "english"}"#).tokens("Testing this") == ["test", "this"])
        #expect(try analyzer(#", "min_token_len": 3"#).tokens("a bb ccc 北京") == ["ccc"])
        #expect(try analyzer(#", "stopwords": "english""#).tokens("The quick fox") == ["quick", "fox"])
        // Diacritics go whatever `ascii_folding` says; Cyrillic keeps its decomposed marks as Qdrant's does.
        #expect(try analyzer(#", "ascii_folding": false"#).tokens("naïve") == ["naive"])
        #expect(try analyzer().tokens("йод") == ["и\u{306}од"])
    }

    @Test func mixedScriptsSplitByRun() throws {
        #expect(try analyzer().tokens("我爱Qdrant 2024年") == ["我", "爱", "qdrant", "年"])
    }
}
