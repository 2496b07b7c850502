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
    /// Snowball stemming (English).
    public var stemming = false

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
                guard language.lowercased() == "english" || language.lowercased() == "en" else {
                    throw JSONDecodingError(path: "field_schema.stopwords", message: "stopwords for `\(language)` are not available yet; list them in `custom`")
                }
                stopwords.formUnion(Self.englishStopwords)
            }
        }
        if let stemmer = params["stemmer"], !stemmer.isNull {
            guard case .object(let object) = stemmer, object["type"]?.stringValue == "snowball", let language = object["language"]?.stringValue else {
                throw JSONDecodingError(path: "field_schema.stemmer", message: "expected {\"type\": \"snowball\", \"language\": …}")
            }
            guard language == "english" else {
                throw JSONDecodingError(path: "field_schema.stemmer.language", message: "snowball stemming is available for `english` only, not `\(language)`")
            }
            stemming = true
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
        if stemming { token = EnglishStemmer.stem(token) }
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
                if stemming { token = EnglishStemmer.stem(token) }
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

    /// Qdrant's English list (NLTK's), contraction fragments included: the word tokenizer cuts
    /// "don't" into "don" and "t", both stopwords.
    static let englishStopwords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "ain", "all", "am", "an", "and", "any", "are", "aren",
        "aren't", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
        "can", "couldn", "couldn't", "d", "did", "didn", "didn't", "do", "does", "doesn", "doesn't", "doing", "don",
        "don't", "down", "during", "each", "few", "for", "from", "further", "had", "hadn", "hadn't", "has", "hasn",
        "hasn't", "have", "haven", "haven't", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his",
        "how", "i", "if", "in", "into", "is", "isn", "isn't", "it", "it's", "its", "itself", "just", "ll", "m", "ma",
        "me", "mightn", "mightn't", "more", "most", "mustn", "mustn't", "my", "myself", "needn", "needn't", "no", "nor",
        "not", "now", "o", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over",
        "own", "re", "s", "same", "shan", "shan't", "she", "she's", "should", "should've", "shouldn", "shouldn't", "so",
        "some", "such", "t", "than", "that", "that'll", "the", "their", "theirs", "them", "themselves", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "ve", "very", "was", "wasn",
        "wasn't", "we", "were", "weren", "weren't", "what", "when", "where", "which", "while", "who", "whom", "why",
        "will", "with", "won", "won't", "wouldn", "wouldn't", "y", "you", "you'd", "you'll", "you're", "you've", "your",
        "yours", "yourself", "yourselves",
    ]
}
