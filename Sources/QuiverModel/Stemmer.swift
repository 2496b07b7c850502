import CStemmer
import Synchronization

/// Snowball stemming in one of Qdrant's stemmer languages, by Snowball's C library. Qdrant's
/// stemmers (rust-stemmers) follow an older Snowball in two places this one mends: Russian keeps
/// "ё" as a letter of its own (here it stands in for a private-use character the algorithm does
/// not know, so it behaves the same), and French words ending in "ë" or beginning with "ï" and
/// Finnish words with "å" may stem differently.
public struct Stemmer: Sendable, Equatable {
    /// Snowball's name of the language.
    public let language: String

    /// Qdrant's stemmer languages (`SnowballLanguage`) by name and code, as Qdrant spells them.
    static let languages = LanguageTable("""
        ar arabic hy armenian da danish nl dutch en english fi finnish fr french de german el greek hu hungarian \
        it italian no norwegian pt portuguese ro romanian ru russian es spanish sv swedish ta tamil tr turkish
        """)
    /// Armenian is left out until its stems are checked against Qdrant's.
    static let unavailable: Set<String> = ["armenian"]

    /// The stemmer of a language name or code; nil when Quiver has none for it.
    public init?(language: String) {
        guard let name = Self.languages[language], !Self.unavailable.contains(name) else { return nil }
        // The library has the language: checked once, with the first handle, which goes to the pool.
        if Self.idle.withLock({ $0[name] == nil }) {
            guard let handle = Handle(name) else { return nil }
            Self.idle.withLock { $0[name, default: []].append(handle) }
        }
        self.language = name
    }

    /// Idle stemmers by language: a stemmer serves one thread at a time.
    private static let idle = Mutex<[String: [Handle]]>([:])

    /// One of Snowball's stemmers, freed with its last reference.
    private final class Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        init?(_ language: String) {
            guard let pointer = sb_stemmer_new(language, "UTF_8") else { return nil }
            self.pointer = pointer
        }
        deinit { sb_stemmer_delete(pointer) }
    }

    public func stem(_ word: String) -> String {
        // A handle was made for the language when the stemmer was; one more can only fail if
        // memory runs out, and then the word stays as it is.
        guard let handle = Self.idle.withLock({ $0[language]?.popLast() }) ?? Handle(language) else { return word }
        defer { Self.idle.withLock { if $0[language, default: []].count < 8 { $0[language, default: []].append(handle) } } }
        // Russian "ё" stands in for a private-use character the algorithm leaves alone.
        let russian = language == "russian"
        let input = russian ? Self.swap(word, "ё", "\u{E000}") : word
        let bytes = Array(input.utf8)
        guard let stemmed = bytes.withUnsafeBufferPointer({ sb_stemmer_stem(handle.pointer, $0.baseAddress, Int32($0.count)) }) else {
            return word
        }
        let result = String(decoding: UnsafeBufferPointer(start: stemmed, count: Int(sb_stemmer_length(handle.pointer))), as: UTF8.self)
        return russian ? Self.swap(result, "\u{E000}", "ё") : result
    }

    /// `word` with every scalar `from` replaced by `to`.
    static func swap(_ word: String, _ from: Unicode.Scalar, _ to: Unicode.Scalar) -> String {
        word.unicodeScalars.contains(from) ? String(String.UnicodeScalarView(word.unicodeScalars.map { $0 == from ? to : $0 })) : word
    }
}

/// Language names and codes (`"de german fr french …"`, code before name) mapped to names.
struct LanguageTable: Sendable {
    let names: [String: String]

    init(_ pairs: String) {
        let words = pairs.split(whereSeparator: \.isWhitespace).map(String.init)
        var names: [String: String] = [:]
        for i in stride(from: 0, to: words.count - 1, by: 2) {
            names[words[i]] = words[i + 1]
            names[words[i + 1]] = words[i + 1]
        }
        self.names = names
    }

    subscript(_ key: String) -> String? { names[key] }
}
