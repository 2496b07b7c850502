import QuiverJSON
import QuiverModel
import Testing

@Suite struct BM25Tests {
    @Test func tokenIndicesAreTheAbsoluteSignedMurmur3Hash() {
        // mmh3.hash(token, signed=True) in Python: 613153351 for "hello", -1811441128 for "running".
        #expect(BM25.index("hello") == 613_153_351)
        #expect(BM25.index("") == 0)
        #expect(BM25.index("abcd") == BM25.index("abcd") && BM25.index("abcd") != BM25.index("abce"))
    }

    @Test func documentWeightsFollowTheBM25Formula() throws {
        let bm25 = try BM25(options: JSONObject([("avg_len", 5), ("stemmer", ["type": "none"]), ("stopwords", ["custom": []])]), path: "options")
        let vector = bm25.document("the cat sat on the")
        let weights = Dictionary(uniqueKeysWithValues: zip(vector.indices, vector.values))
        #expect(abs(weights[BM25.index("the")]! - 1.375) < 1e-6)
        #expect(bm25.query("cat cat sat").values == [1, 1])
        #expect(throws: JSONDecodingError.self) { try BM25(options: JSONObject([("k", -1)]), path: "options") }
    }
}
