public import QuiverJSON

/// Server-side inference of a `Document` (`{"text": …, "model": "qdrant/bm25", "options": …}`)
/// into a sparse vector, as Qdrant's `qdrant/bm25` model does it: the text cut into tokens
/// (word tokenizer, lowercase, the language's stopwords and Snowball stemmer unless the options
/// say otherwise), each token's index the absolute value of its signed 32-bit murmur3 hash; a
/// document's weights the BM25 term frequency n(k + 1) / (n + k(1 − b + b · length / avg_len)),
/// a query's 1 per distinct token.
public struct BM25: Sendable {
    public static let model = "qdrant/bm25"
    let analyzer: TextAnalyzer
    let k: Double, b: Double, averageLength: Double

    /// The model `options`: `k` (1.2), `b` (0.75), `avg_len` (256), `tokenizer`, `language`,
    /// `lowercase`, `ascii_folding`, `stopwords`, `stemmer`, `min_token_len`, `max_token_len`.
    public init(options: JSONObject, path: String) throws(JSONDecodingError) {
        func number(_ key: String, _ fallback: Double) throws(JSONDecodingError) -> Double {
            guard let raw = options[key], !raw.isNull else { return fallback }
            guard let value = raw.doubleValue else { throw JSONDecodingError(path: "\(path).\(key)", message: "expected a number") }
            return value
        }
        k = try number("k", 1.2)
        b = try number("b", 0.75)
        averageLength = try number("avg_len", 256)
        guard k.isFinite, k >= 0 else { throw JSONDecodingError(path: "\(path).k", message: "BM25 k1 must be finite and >= 0, got \(k)") }
        guard b.isFinite, (0...1).contains(b) else { throw JSONDecodingError(path: "\(path).b", message: "BM25 b must be finite and in [0.0, 1.0], got \(b)") }
        guard averageLength.isFinite, averageLength > 0 else {
            throw JSONDecodingError(path: "\(path).avg_len", message: "BM25 avg_doc_len must be finite and > 0, got \(averageLength)")
        }
        var params = options
        // The language gives the default stopwords (Qdrant's languages) and stemmer (its Snowball
        // languages), by name or code as Qdrant spells them; any other language (`none`, which
        // Qdrant deprecates) gives neither.
        if let raw = options["language"], !raw.isNull, raw.stringValue == nil {
            throw JSONDecodingError(path: "\(path).language", message: "expected a string")
        }
        let language = options["language"]?.stringValue ?? "english"
        if params["stopwords"] == nil || params["stopwords"]?.isNull == true {
            params["stopwords"] = nil
            if let name = Stopwords.languages[language] {
                guard Stopwords.list(name) != nil else {
                    throw JSONDecodingError(path: "\(path).language", message: "BM25 stopwords for `\(name)` are not available yet; list them in `stopwords.custom` (`{\"custom\": []}` for none)")
                }
                params["stopwords"] = .string(name)
            }
        }
        if case .object(let stemmer)? = params["stemmer"], stemmer["type"]?.stringValue == "none" {
            params["stemmer"] = nil
        } else if params["stemmer"] == nil || params["stemmer"]?.isNull == true {
            params["stemmer"] = nil
            if let name = Stemmer.languages[language] {
                guard let stemmer = Stemmer(language: name) else {
                    throw JSONDecodingError(path: "\(path).language", message: "BM25 stemming for `\(name)` is not available yet; set `stemmer` to {\"type\": \"none\"}")
                }
                params["stemmer"] = ["type": "snowball", "language": .string(stemmer.language)]
            }
        }
        do {
            analyzer = try TextAnalyzer(params: params)
        } catch {
            throw JSONDecodingError(path: path, message: error.message)
        }
    }

    /// A document's sparse vector (BM25 term frequencies).
    public func document(_ text: String) -> SparseVector {
        let tokens = analyzer.tokenizer == .prefix ? analyzer.prefixTokens(text) : analyzer.tokens(text)
        guard !tokens.isEmpty else { return SparseVector() }
        var counts: [String: Int] = [:]
        for token in tokens { counts[token, default: 0] += 1 }
        let length = Double(tokens.count)
        var weights: [UInt32: Float] = [:]
        for (token, count) in counts {
            let n = Double(count)
            weights[Self.index(token)] = Float(n * (k + 1) / (k * (1 - b + b * length / averageLength) + n))
        }
        let indices = weights.keys.sorted()
        return SparseVector(indices: indices, values: indices.map { weights[$0]! })
    }

    /// A query's sparse vector: 1 for each distinct token.
    public func query(_ text: String) -> SparseVector {
        let indices = Set(analyzer.queryTokens(text).map(Self.index)).sorted()
        return SparseVector(indices: indices, values: indices.map { _ in 1 })
    }

    /// A token's dimension: |murmur3_32(token, seed 0) as a signed integer|.
    public static func index(_ token: String) -> UInt32 {
        Int32(bitPattern: murmur3(Array(token.utf8))).magnitude
    }

    /// MurmurHash3, x86 32-bit.
    static func murmur3(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        let c1: UInt32 = 0xcc9e_2d51, c2: UInt32 = 0x1b87_3593
        func mix(_ k: UInt32) -> UInt32 {
            var k = k &* c1
            k = (k << 15) | (k >> 17)
            return k &* c2
        }
        var h = seed
        var i = 0
        while i + 4 <= bytes.count {
            let k = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            h ^= mix(k)
            h = (h << 13) | (h >> 19)
            h = h &* 5 &+ 0xe654_6b64
            i += 4
        }
        var tail: UInt32 = 0
        let rest = bytes.count & 3
        if rest >= 3 { tail ^= UInt32(bytes[i + 2]) << 16 }
        if rest >= 2 { tail ^= UInt32(bytes[i + 1]) << 8 }
        if rest >= 1 {
            tail ^= UInt32(bytes[i])
            h ^= mix(tail)
        }
        h ^= UInt32(truncatingIfNeeded: bytes.count)
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }
}

extension PointsJSON {
    /// Whether `value` is a `Document` (`{"text": …}`).
    static func isDocument(_ value: JSONValue) -> Bool {
        if case .object(let object) = value { object["text"] != nil } else { false }
    }

    /// A `Document` turned into a sparse vector by the BM25 model (`query`: as a search query);
    /// other models, images and objects are a 400 naming them.
    static func document(_ value: JSONValue, _ path: String, query: Bool) throws(Failure) -> SparseVector {
        let body = try object(value, path)
        try allowOnly(body, ["text", "model", "options"], path)
        guard let text = body["text"]?.stringValue else { throw fail(join(path, "text"), "expected a string") }
        guard let model = body["model"]?.stringValue else { throw fail(path, "missing field `model`") }
        guard model.lowercased() == BM25.model else {
            throw fail(join(path, "model"), "model `\(model)` is not available for inference on this server; `\(BM25.model)` is")
        }
        var options = JSONObject()
        if let raw = body["options"], !raw.isNull { options = try object(raw, join(path, "options")) }
        let bm25 = try BM25(options: options, path: join(path, "options"))
        return query ? bm25.query(text) : bm25.document(text)
    }
}
