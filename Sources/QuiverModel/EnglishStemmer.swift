/// The Snowball English stemmer ("Porter2"), the algorithm behind Qdrant's
/// `{"type": "snowball", "language": "english"}`, written from the published algorithm
/// description. It works on a lowercase word; other characters than a–z count as consonants.
enum EnglishStemmer {
    static func stem(_ word: String) -> String {
        var chars = Array(word)
        guard chars.count > 2 else { return word }
        if let special = exceptions[word] { return special }
        var state = State(chars: chars)
        state.run()
        chars = state.chars
        return String(chars.map { $0 == "Y" ? "y" : $0 })
    }

    /// Whole words with a stem of their own (or none).
    static let exceptions: [String: String] = [
        "skis": "ski", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "idly": "idl",
        "gently": "gentl", "ugly": "ugli", "early": "earli", "only": "onli", "singly": "singl",
        "sky": "sky", "news": "news", "howe": "howe", "atlas": "atlas", "cosmos": "cosmos", "bias": "bias", "andes": "andes",
    ]

    /// Words left as they are after step 1a.
    static let invariantAfterStep1a: Set<String> = ["inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed"]

    private struct State {
        var chars: [Character]
        /// Where the regions R1 and R2 begin.
        var r1 = 0, r2 = 0

        static func isVowel(_ c: Character) -> Bool { "aeiouy".contains(c) }

        func vowel(_ i: Int) -> Bool { Self.isVowel(chars[i]) }

        func ends(_ suffix: String) -> Bool {
            chars.suffix(suffix.count).elementsEqual(suffix) && chars.count >= suffix.count
        }

        /// The longest of `suffixes` the word ends with.
        func longest(_ suffixes: [String]) -> String? {
            suffixes.filter(ends).max { $0.count < $1.count }
        }

        mutating func replace(_ suffix: String, with replacement: String) {
            chars.removeLast(suffix.count)
            chars += Array(replacement)
        }

        func hasVowel(before end: Int) -> Bool { (0..<max(0, end)).contains { vowel($0) } }

        /// Whether the word ends, at `end`, in a short syllable: a vowel followed by a consonant
        /// other than w, x and Y and preceded by a consonant, or a vowel at the start followed by
        /// a consonant.
        func shortSyllable(endingAt end: Int) -> Bool {
            guard end >= 2 else { return false }
            let last = end - 1
            if end == 2 { return vowel(0) && !vowel(1) }
            return !vowel(last) && !"wxY".contains(chars[last]) && vowel(last - 1) && !vowel(last - 2)
        }

        mutating func run() {
            if chars.first == "'" { chars.removeFirst() }
            for i in chars.indices where chars[i] == "y" && (i == 0 || vowel(i - 1)) { chars[i] = "Y" }
            markRegions()
            step1a()
            if EnglishStemmer.invariantAfterStep1a.contains(String(chars)) { return }
            step1b()
            step1c()
            step2()
            step3()
            step4()
            step5()
        }

        /// R1 starts after the first consonant that follows a vowel (or after one of a few
        /// prefixes), R2 likewise within R1.
        mutating func markRegions() {
            func regionStart(from start: Int) -> Int {
                var i = start
                while i < chars.count && !vowel(i) { i += 1 }
                while i < chars.count && vowel(i) { i += 1 }
                return min(i + 1, chars.count)
            }
            let word = String(chars)
            if let prefix = ["gener", "commun", "arsen"].first(where: word.hasPrefix) {
                r1 = prefix.count
            } else {
                r1 = regionStart(from: 0)
            }
            r2 = regionStart(from: r1)
        }

        func inR1(_ suffix: String) -> Bool { chars.count - suffix.count >= r1 }
        func inR2(_ suffix: String) -> Bool { chars.count - suffix.count >= r2 }

        mutating func step1a() {
            if let suffix = longest(["'", "'s", "'s'"]) { chars.removeLast(suffix.count) }
            switch longest(["sses", "ied", "ies", "s", "us", "ss"]) {
            case "sses"?: replace("sses", with: "ss")
            case let suffix? where suffix.hasPrefix("ie"): replace(suffix, with: chars.count > 4 ? "i" : "ie")
            case "s"?: if hasVowel(before: chars.count - 2) { chars.removeLast() }
            default: break
            }
        }

        mutating func step1b() {
            guard let suffix = longest(["eed", "eedly", "ed", "edly", "ing", "ingly"]) else { return }
            if suffix.hasPrefix("ee") {
                if inR1(suffix) { replace(suffix, with: "ee") }
                return
            }
            guard hasVowel(before: chars.count - suffix.count) else { return }
            chars.removeLast(suffix.count)
            if ends("at") || ends("bl") || ends("iz") {
                chars.append("e")
            } else if let last = chars.last, chars.count >= 2, chars[chars.count - 2] == last, "bdfgmnprt".contains(last) {
                chars.removeLast()
            } else if chars.count == r1 && shortSyllable(endingAt: chars.count) {
                chars.append("e")
            }
        }

        mutating func step1c() {
            guard let last = chars.last, last == "y" || last == "Y", chars.count > 2, !vowel(chars.count - 2) else { return }
            chars[chars.count - 1] = "i"
        }

        static let step2Rules: [(String, String)] = [
            ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("abli", "able"), ("entli", "ent"),
            ("izer", "ize"), ("ization", "ize"), ("ational", "ate"), ("ation", "ate"), ("ator", "ate"),
            ("alism", "al"), ("aliti", "al"), ("alli", "al"), ("fulness", "ful"), ("ousli", "ous"), ("ousness", "ous"),
            ("iveness", "ive"), ("iviti", "ive"), ("biliti", "ble"), ("bli", "ble"), ("ogi", "og"), ("fulli", "ful"),
            ("lessli", "less"), ("li", ""),
        ]

        mutating func step2() {
            guard let suffix = longest(Self.step2Rules.map(\.0)), inR1(suffix) else { return }
            let before = chars.count - suffix.count
            switch suffix {
            case "ogi": if before > 0 && chars[before - 1] == "l" { replace(suffix, with: "og") }
            case "li": if before > 0 && "cdeghkmnrt".contains(chars[before - 1]) { chars.removeLast(2) }
            default: replace(suffix, with: Self.step2Rules.first { $0.0 == suffix }!.1)
            }
        }

        static let step3Rules: [(String, String)] = [
            ("tional", "tion"), ("ational", "ate"), ("alize", "al"), ("icate", "ic"), ("iciti", "ic"), ("ical", "ic"),
            ("ful", ""), ("ness", ""), ("ative", ""),
        ]

        mutating func step3() {
            guard let suffix = longest(Self.step3Rules.map(\.0)), inR1(suffix) else { return }
            if suffix == "ative" && !inR2(suffix) { return }
            replace(suffix, with: Self.step3Rules.first { $0.0 == suffix }!.1)
        }

        static let step4Suffixes = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
                                    "ism", "ate", "iti", "ous", "ive", "ize", "ion"]

        mutating func step4() {
            guard let suffix = longest(Self.step4Suffixes), inR2(suffix) else { return }
            if suffix == "ion" {
                let before = chars.count - 3
                guard before > 0, chars[before - 1] == "s" || chars[before - 1] == "t" else { return }
            }
            chars.removeLast(suffix.count)
        }

        mutating func step5() {
            guard let last = chars.last else { return }
            if last == "e" {
                if inR2("e") || (inR1("e") && !shortSyllable(endingAt: chars.count - 1)) { chars.removeLast() }
            } else if last == "l" {
                if inR2("l") && chars.count >= 2 && chars[chars.count - 2] == "l" { chars.removeLast() }
            }
        }
    }
}
