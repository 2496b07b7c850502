import Foundation
public import QuiverJSON

/// How text is cut into tokens for `text`, `text_any` and `phrase` conditions: the default word
/// tokenizer with lowercasing on fields without a text index, the index's settings on fields
/// with one (`TextIndexParams`).
public struct TextAnalyzer: Sendable, Equatable {
    public enum Tokenizer: String, Sendable {
        case word, whitespace, prefix, multilingual
    }

    public var tokenizer = Tokenizer.word
    public var lowercase = true
    public var asciiFolding = false
    public var minTokenLength: Int?
    public var maxTokenLength: Int?
    public var stopwords: Set<String> = []
    public var phraseMatching = false
    /// Snowball stemming.
    public var stemmer: Stemmer?

    public static let standard = TextAnalyzer()

    public init() {}

    /// The analyzer a text index's parameters describe; unsupported settings are errors.
    public init(params: JSONObject?) throws(JSONDecodingError) {
        guard let params else { return }
        if let name = params["tokenizer"]?.stringValue { tokenizer = Tokenizer(rawValue: name) ?? .word }
        if case .bool(let b)? = params["lowercase"] { lowercase = b }
        if case .bool(let b)? = params["ascii_folding"] { asciiFolding = b }
        if case .bool(let b)? = params["phrase_matching"] { phraseMatching = b }
        if case .int(let n)? = params["min_token_len"] { minTokenLength = Int(n) }
        if case .int(let n)? = params["max_token_len"] { maxTokenLength = Int(n) }
        if let raw = params["stopwords"], !raw.isNull {
            var languages: [String] = []
            switch raw {
            case .string(let language): languages = [language]
            case .object(let object):
                if case .array(let list)? = object["languages"] { languages = list.compactMap(\.stringValue) }
                if case .array(let list)? = object["custom"] {
                    for word in list.compactMap(\.stringValue) { stopwords.insert(lowercase ? word.lowercased() : word) }
                }
            default:
                throw JSONDecodingError(path: "field_schema.stopwords", message: "expected a language or {\"languages\": […], \"custom\": […]}")
            }
            for language in languages {
                guard let name = Stopwords.languages[language] else {
                    throw JSONDecodingError(path: "field_schema.stopwords", message: "unknown language `\(language)`")
                }
                guard let list = Stopwords.list(name) else {
                    throw JSONDecodingError(path: "field_schema.stopwords", message: "stopwords for `\(name)` are not available yet; list them in `custom`")
                }
                stopwords.formUnion(lowercase ? Set(list.map { $0.lowercased() }) : list)
            }
        }
        if let raw = params["stemmer"], !raw.isNull {
            guard case .object(let object) = raw, object["type"]?.stringValue == "snowball", let language = object["language"]?.stringValue else {
                throw JSONDecodingError(path: "field_schema.stemmer", message: "expected {\"type\": \"snowball\", \"language\": …}")
            }
            guard let stemmer = Stemmer(language: language) else {
                throw JSONDecodingError(path: "field_schema.stemmer.language", message: "snowball stemming is not available for `\(language)`")
            }
            self.stemmer = stemmer
        }
    }

    /// The tokens of a document or a query, in order.
    public func tokens(_ text: String) -> [String] {
        if tokenizer == .multilingual { return MultilingualTokenizer.tokens(text, self) }
        let source = asciiFolding ? Self.fold(text) : text
        let raw: [String] = switch tokenizer {
        case .whitespace: source.split(whereSeparator: \.isWhitespace).map(String.init)
        case .word, .prefix, .multilingual: Self.words(source)
        }
        return raw.compactMap { process($0, folded: true) }
    }

    /// What every tokenizer does with its tokens: ASCII folding, lowercase, stopwords, stemming,
    /// length limits (in characters). Nil when the token is dropped.
    func process(_ raw: String, folded: Bool = false, checkMaximum: Bool = true) -> String? {
        var token = asciiFolding && !folded ? Self.fold(raw) : raw
        if lowercase { token = token.lowercased() }
        if stopwords.contains(token) { return nil }
        if let stemmer { token = stemmer.stem(token) }
        if let minTokenLength, token.unicodeScalars.count < minTokenLength { return nil }
        if checkMaximum, let maxTokenLength, token.unicodeScalars.count > maxTokenLength { return nil }
        return token
    }

    /// A query's tokens (text conditions, BM25 queries). With the prefix tokenizer: whole words,
    /// stopwords kept (so a typed beginning still finds), cut to `max_token_len` characters.
    public func queryTokens(_ text: String) -> [String] {
        guard tokenizer == .prefix else { return tokens(text) }
        return Self.words(text).compactMap { word in
            var token = asciiFolding ? Self.fold(word) : word
            if lowercase { token = token.lowercased() }
            if let stemmer { token = stemmer.stem(token) }
            if let minTokenLength, token.unicodeScalars.count < minTokenLength { return nil }
            return maxTokenLength.map { Self.head(token, $0) } ?? token
        }
    }

    /// A stored text's tokens for text conditions: with the prefix tokenizer its words, however
    /// long, which a query token matches when it begins one (the prefixes Qdrant indexes).
    public func documentTokens(_ text: String) -> [String] {
        tokenizer == .prefix ? prefixWords(text) : tokens(text)
    }

    /// The prefix tokenizer's words, processed, without the maximum length.
    func prefixWords(_ text: String) -> [String] {
        Self.words(text).compactMap { process($0, checkMaximum: false) }
    }

    /// The runs of letters and digits of `text`, cut as Qdrant cuts them: at every Unicode scalar
    /// that is neither alphabetic nor a number (so a combining accent written apart ends a word).
    static func words(_ text: String) -> [String] {
        text.unicodeScalars.split { scalar in
            let properties = scalar.properties
            switch properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return false
            default: return !properties.isAlphabetic
            }
        }.map { String(String.UnicodeScalarView($0)) }
    }

    /// The first `n` characters (Unicode scalars, as Qdrant counts them) of `token`.
    static func head(_ token: String, _ n: Int) -> String {
        String(String.UnicodeScalarView(token.unicodeScalars.prefix(n)))
    }

    /// A document's tokens as BM25 counts them with the prefix tokenizer: each word stands for its
    /// prefixes of `min_token_len` (1) to `max_token_len` characters, and for itself when it is no
    /// longer (no maximum length drops it).
    public func prefixTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        for token in prefixWords(text) {
            let length = token.unicodeScalars.count, maximum = maxTokenLength ?? .max
            var n = minTokenLength ?? 1
            while n < length && n <= maximum {
                tokens.append(Self.head(token, n))
                n += 1
            }
            if n <= maximum { tokens.append(token) }
        }
        return tokens
    }

    static func fold(_ text: String) -> String { text.folding(options: [.diacriticInsensitive], locale: nil) }

    /// Whether a query token is found among a document's tokens: equal, or with the prefix
    /// tokenizer, a prefix of one.
    func contains(_ document: Set<String>, _ query: String) -> Bool {
        tokenizer == .prefix ? document.contains { $0.hasPrefix(query) } : document.contains(query)
    }
}
