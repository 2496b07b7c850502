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
        let raw: [Substring] = switch tokenizer {
        case .whitespace: source.split(whereSeparator: \.isWhitespace)
        case .word, .prefix, .multilingual: source.split { !($0.isLetter || $0.isNumber) }
        }
        return raw.compactMap { process(String($0), folded: true) }
    }

    /// What every tokenizer does with its tokens: ASCII folding, lowercase, stopwords, stemming,
    /// length limits (in characters). Nil when the token is dropped.
    func process(_ raw: String, folded: Bool = false, checkMaximum: Bool = true) -> String? {
        var token = asciiFolding && !folded ? Self.fold(raw) : raw
        if lowercase { token = token.lowercased() }
        if stopwords.contains(token) { return nil }
        if let stemmer { token = stemmer.stem(token) }
        if let minTokenLength, token.count < minTokenLength { return nil }
        if checkMaximum, let maxTokenLength, token.count > maxTokenLength { return nil }
        return token
    }

    /// The prefix tokenizer's tokens as BM25 counts them. A document's word stands for its
    /// prefixes of `min_token_len` (1) to `max_token_len` characters, the whole word when it is
    /// not longer (no maximum length drops it). A query's word (stopwords kept, so a typed
    /// beginning still finds) is cut to `max_token_len` characters.
    public func prefixTokens(_ text: String, query: Bool) -> [String] {
        let words = text.split { !($0.isLetter || $0.isNumber) }
        var tokens: [String] = []
        for word in words {
            if query {
                var token = asciiFolding ? Self.fold(String(word)) : String(word)
                if lowercase { token = token.lowercased() }
                if let stemmer { token = stemmer.stem(token) }
                if let minTokenLength, token.count < minTokenLength { continue }
                tokens.append(maxTokenLength.map { String(token.prefix($0)) } ?? token)
            } else {
                guard let token = process(String(word), checkMaximum: false) else { continue }
                var n = minTokenLength ?? 1
                while n < token.count && n <= (maxTokenLength ?? .max) {
                    tokens.append(String(token.prefix(n)))
                    n += 1
                }
                if n > (maxTokenLength ?? .max) { continue }
                tokens.append(token)
            }
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
