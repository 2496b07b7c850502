import CTextSegmentation
import Foundation

/// The `multilingual` tokenizer, as Qdrant's behaves:
/// - Text whose letters are mostly Japanese (kana present, no Latin majority) is split into words
///   as a whole; a word is kept when it has a letter, checked against the stopwords as written,
///   and lowercased (with `lowercase`). No other processing applies.
/// - Other text is cut into runs of Han, Thai and other characters. Han and Thai runs are split
///   into words with dictionaries; other runs at separators (punctuation, spaces and math
///   symbols; `$`, `<`, `=`, `>`, `^`, `|` and `~` stay inside words). Each token is normalised
///   (compatibility decomposition, control characters dropped, lowercase, `œ`→`oe`, `æ`→`ae`,
///   final `ς`→`σ`, diacritics dropped in Latin, Greek, Hebrew, Thai and Arabic words), dropped
///   unless it has a letter (so numbers are not tokens), then processed as every tokenizer's tokens
///   are (ASCII folding, lowercase, stopwords, stemming, length limits).
///
/// Qdrant finds Chinese words with jieba, Japanese ones with vaporetto and Thai ones with its own
/// dictionary; Quiver uses ICU's dictionaries for all three, which agree on common words but not
/// on every one (`星期一` is one word to ICU, two to jieba).
enum MultilingualTokenizer {
    static func tokens(_ text: String, _ analyzer: TextAnalyzer) -> [String] {
        if isJapanese(text) {
            return words(text).compactMap { word in
                guard hasLetter(word), !analyzer.stopwords.contains(word) else { return nil }
                return analyzer.lowercase ? word.lowercased() : word
            }
        }
        var result: [String] = []
        for (run, kind) in runs(text) {
            let pieces = kind == .other ? run.split(whereSeparator: isSeparator).map(String.init) : words(run)
            for piece in pieces {
                let token = normalize(piece)
                guard hasLetter(token), let processed = analyzer.process(token) else { continue }
                result.append(processed)
            }
        }
        return result
    }

    // MARK: Scripts

    enum RunKind { case han, thai, other }

    static func kind(_ scalar: Unicode.Scalar) -> RunKind? {
        switch scalar.value {
        case 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x3134F: .han
        case 0x0E00...0x0E7F: .thai
        default: scalar.properties.isAlphabetic ? .other : nil
        }
    }

    static func isKana(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x3040...0x309F, 0x30A0...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9F: true
        default: false
        }
    }

    static func isLatin(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x41...0x5A, 0x61...0x7A, 0xC0...0x24F, 0x1E00...0x1EFF, 0x2C60...0x2C7F, 0xA720...0xA7FF, 0xFF21...0xFF3A, 0xFF41...0xFF5A: true
        default: false
        }
    }

    /// Japanese when kana is present and Latin letters are not the largest script.
    static func isJapanese(_ text: String) -> Bool {
        var kana = 0, latin = 0, other = 0
        for scalar in text.unicodeScalars where scalar.properties.isAlphabetic {
            if isKana(scalar) { kana += 1 } else if isLatin(scalar) { latin += 1 } else { other += 1 }
        }
        return kana > 0 && latin < kana + other
    }

    /// Maximal runs of one kind; characters of no kind (spaces, digits, punctuation) join the run
    /// they are in.
    static func runs(_ text: String) -> [(String, RunKind)] {
        var result: [(String, RunKind)] = []
        var current = String.UnicodeScalarView()
        var currentKind = RunKind.other
        for scalar in text.unicodeScalars {
            if let kind = kind(scalar), kind != currentKind {
                if !current.isEmpty { result.append((String(current), currentKind)) }
                current = String.UnicodeScalarView()
                currentKind = kind
            }
            current.append(scalar)
        }
        if !current.isEmpty { result.append((String(current), currentKind)) }
        return result
    }

    /// ICU's words of `text`.
    static func words(_ text: String) -> [String] {
        let units = Array(text.utf16)
        guard !units.isEmpty else { return [] }
        var bounds = [Int32](repeating: 0, count: 2 * units.count)
        let count = units.withUnsafeBufferPointer { text in
            bounds.withUnsafeMutableBufferPointer { quiver_word_bounds(text.baseAddress, Int32(text.count), $0.baseAddress, $0.count) }
        }
        guard count > 0 else { return [] }
        return (0..<count).map { i in String(decoding: units[Int(bounds[2 * i])..<Int(bounds[2 * i + 1])], as: UTF16.self) }
    }

    // MARK: Tokens

    static func hasLetter(_ token: String) -> Bool { token.unicodeScalars.contains { $0.properties.isAlphabetic } }

    static func normalize(_ piece: String) -> String {
        var text = piece.utf8.allSatisfy({ $0 < 0x80 }) ? piece : piece.decomposedStringWithCompatibilityMapping
        text = text.lowercased()
        let stripMarks = text.unicodeScalars.first { $0.properties.isAlphabetic }.map(stripsMarks) ?? false
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control: continue
            case .nonspacingMark where stripMarks: continue
            default: break
            }
            switch scalar {
            case "œ": out.append(contentsOf: "oe".unicodeScalars)
            case "æ": out.append(contentsOf: "ae".unicodeScalars)
            case "ς": out.append("σ")
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// Whether a word starting with `scalar` loses its nonspacing marks: Latin, Greek, Hebrew,
    /// Thai and Arabic words do.
    static func stripsMarks(_ scalar: Unicode.Scalar) -> Bool {
        if isLatin(scalar) { return true }
        switch scalar.value {
        case 0x0370...0x03FF, 0x1F00...0x1FFF, 0x0590...0x05FF, 0x0E00...0x0E7F, 0x0600...0x06FF, 0x0750...0x077F, 0x08A0...0x08FF,
             0xFB1D...0xFB4F, 0xFB50...0xFDFF, 0xFE70...0xFEFF: return true
        default: return false
        }
    }

    static func isSeparator(_ scalar: Character) -> Bool {
        guard let first = scalar.unicodeScalars.first else { return false }
        let value = first.value
        var low = 0, high = separators.count
        while low < high {
            let mid = (low + high) / 2
            if separators[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        return low < separators.count && separators[low].contains(value)
    }

    /// The separator set of charabia, the segmenter behind Qdrant's multilingual tokenizer, as
    /// code point ranges in order.
    static let separators: [ClosedRange<UInt32>] = [
        0x0...0x0, 0x9...0xA, 0xD...0xD, 0x20...0x23, 0x25...0x2F, 0x3A...0x3B, 0x3F...0x40, 0x5B...0x5D, 0x5F...0x60,
        0x7B...0x7B, 0x7D...0x7D, 0xA1...0xA1, 0xA7...0xA7, 0xAB...0xAB, 0xB1...0xB1, 0xB6...0xB7, 0xBB...0xBB,
        0xBF...0xBF, 0xD7...0xD7, 0xF7...0xF7, 0x55A...0x55F, 0x589...0x58A, 0x5BE...0x5BE, 0x5C0...0x5C0,
        0x5C3...0x5C3, 0x5C6...0x5C6, 0x5F3...0x5F4, 0x609...0x60A, 0x60C...0x60D, 0x61B...0x61B, 0x61E...0x61F,
        0x66A...0x66A, 0x66D...0x66D, 0x6D4...0x6D4, 0x700...0x70D, 0x7F7...0x7F9, 0x830...0x83E, 0x85E...0x85E,
        0x964...0x965, 0x970...0x970, 0x9FD...0x9FD, 0xA76...0xA76, 0xAF0...0xAF0, 0xC77...0xC77, 0xC84...0xC84,
        0xDF4...0xDF4, 0xE4F...0xE4F, 0xE5A...0xE5B, 0xF04...0xF0B, 0xF0D...0xF12, 0xF14...0xF14, 0xF3A...0xF3D,
        0xF85...0xF85, 0xFD0...0xFD4, 0xFD9...0xFDA, 0x104A...0x104F, 0x10FB...0x10FB, 0x1360...0x1368,
        0x1400...0x1400, 0x166E...0x166E, 0x1680...0x1680, 0x169B...0x169C, 0x16EB...0x16ED, 0x1735...0x1736,
        0x17D4...0x17D6, 0x17D8...0x17DA, 0x1800...0x180A, 0x1944...0x1945, 0x1A1E...0x1A1F, 0x1AA0...0x1AA6,
        0x1AA8...0x1AAD, 0x1B5A...0x1B60, 0x1BFC...0x1BFF, 0x1C3B...0x1C3F, 0x1C7E...0x1C7F, 0x1CC0...0x1CC7,
        0x1CD3...0x1CD3, 0x2002...0x200A, 0x200C...0x200C, 0x2010...0x2010, 0x2012...0x2027, 0x2029...0x2029,
        0x2030...0x2043, 0x2045...0x2051, 0x2053...0x205E, 0x207D...0x207E, 0x208D...0x208E, 0x2212...0x2225,
        0x2227...0x228D, 0x228F...0x22FF, 0x2308...0x230B, 0x2768...0x2775, 0x27C5...0x27C6, 0x27E6...0x27EF,
        0x2983...0x2998, 0x29D8...0x29DB, 0x29FC...0x29FD, 0x2CF9...0x2CFC, 0x2CFE...0x2CFF, 0x2D70...0x2D70,
        0x2E00...0x2E2E, 0x2E30...0x2E4F, 0x2E52...0x2E52, 0x3000...0x3003, 0x3008...0x3011, 0x3014...0x301F,
        0x3030...0x3030, 0x303D...0x303D, 0x30A0...0x30A0, 0x30FB...0x30FB, 0xA4FE...0xA4FF, 0xA60D...0xA60F,
        0xA673...0xA673, 0xA67E...0xA67E, 0xA6F2...0xA6F7, 0xA874...0xA877, 0xA8CE...0xA8CF, 0xA8F8...0xA8FA,
        0xA8FC...0xA8FC, 0xA92E...0xA92F, 0xA95F...0xA95F, 0xA9C1...0xA9CD, 0xA9DE...0xA9DF, 0xAA5C...0xAA5F,
        0xAADE...0xAADF, 0xAAF0...0xAAF1, 0xABEB...0xABEB, 0xFD3E...0xFD3F, 0xFE10...0xFE19, 0xFE30...0xFE52,
        0xFE54...0xFE61, 0xFE63...0xFE63, 0xFE68...0xFE68, 0xFE6A...0xFE6B, 0xFF01...0xFF03, 0xFF05...0xFF0A,
        0xFF0C...0xFF0F, 0xFF1A...0xFF1B, 0xFF1F...0xFF20, 0xFF3B...0xFF3D, 0xFF3F...0xFF3F, 0xFF5B...0xFF5B,
        0xFF5D...0xFF5D, 0xFF5F...0xFF65, 0x10100...0x10102, 0x1039F...0x1039F, 0x103D0...0x103D0, 0x1056F...0x1056F,
        0x10857...0x10857, 0x1091F...0x1091F, 0x1093F...0x1093F, 0x10A50...0x10A58, 0x10A7F...0x10A7F,
        0x10AF0...0x10AF6, 0x10B39...0x10B3F, 0x10B99...0x10B9C, 0x10EAD...0x10EAD, 0x10F55...0x10F59,
        0x11047...0x1104D, 0x110BB...0x110BC, 0x110BE...0x110C1, 0x11140...0x11143, 0x11174...0x11175,
        0x111C5...0x111C8, 0x111CD...0x111CD, 0x111DB...0x111DB, 0x111DD...0x111DF, 0x11238...0x1123D,
        0x112A9...0x112A9, 0x1144B...0x1144F, 0x1145A...0x1145B, 0x1145D...0x1145D, 0x114C6...0x114C6,
        0x115C1...0x115D7, 0x11641...0x11643, 0x11660...0x1166C, 0x1173C...0x1173E, 0x1183B...0x1183B,
        0x11944...0x11946, 0x119E2...0x119E2, 0x11A3F...0x11A46, 0x11A9A...0x11A9C, 0x11A9E...0x11AA2,
        0x11C41...0x11C45, 0x11C70...0x11C71, 0x11EF7...0x11EF8, 0x11FFF...0x11FFF, 0x12470...0x12474,
        0x16A6E...0x16A6F, 0x16AF5...0x16AF5, 0x16B37...0x16B3B, 0x16B44...0x16B44, 0x16E97...0x16E9A,
        0x16FE2...0x16FE2, 0x1BC9F...0x1BC9F, 0x1DA87...0x1DA8B, 0x1E95E...0x1E95F,
    ]
}
