import QuiverJSON
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null, "x"], "b": {}} "#)
        #expect(value == .object(JSONObject([
            ("a", .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null, .string("x")])),
            ("b", .object(JSONObject())),
        ])))
    }

    @Test func numbersKeepTheirKind() throws {
        #expect(try JSONParser.parse("1") == .int(1))
        #expect(try JSONParser.parse("1.0") == .double(1.0))
        #expect(try JSONParser.parse("-0") == .int(0))
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONParser.parse("18446744073709551615") == .uint(UInt64.max))
        #expect(try JSONParser.parse("18446744073709551616") == .double(18446744073709551616.0))
    }

    @Test func roundTripsPayloadsExactly() throws {
        let text = #"{"int":1,"float":1.0,"small":1e-05,"s":"a\"b\\c\n\u0001é😀","nested":{"k":[{"x":null}]}}"#
        let value = try JSONParser.parse(text)
        let written = JSONWriter.string(value)
        #expect(try JSONParser.parse(written) == value)
        #expect(written.contains(#""int":1,"#))
        #expect(written.contains(#""float":1.0,"#))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try JSONParser.parse(#""\u00e9\ud83d\ude00\/\t""#) == .string("é😀/\t"))
    }

    @Test func keepsKeyOrderAndLastDuplicateWins() throws {
        guard case .object(let object) = try JSONParser.parse(#"{"z":1,"a":2,"z":3}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["z", "a"])
        #expect(object["z"] == .int(3))
    }

    @Test(arguments: [
        ("", "EOF while parsing a value at line 1 column 0"),
        ("{", "EOF while parsing an object at line 1 column 1"),
        ("[1,", "EOF while parsing a value at line 1 column 3"),
        ("{\"a\" 1}", "expected `:` at line 1 column 6"),
        ("{\"a\":1,}", "key must be a string at line 1 column 8"),
        ("[1 2]", "expected `,` or `]` at line 1 column 4"),
        ("{} x", "trailing characters at line 1 column 4"),
        ("tru", "EOF while parsing a value at line 1 column 3"),
        ("nul!", "expected ident at line 1 column 4"),
        ("01", "invalid number at line 1 column 2"),
        ("1.", "invalid number at line 1 column 2"),
        ("\"a\u{01}\"", "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3"),
        ("\"\\x\"", "invalid escape at line 1 column 3"),
        ("\"\\ud800\"", "unexpected end of hex escape at line 1 column 7"),
        ("{\n  \"a\": ?\n}", "expected value at line 2 column 8"),
        ("1e999", "number out of range at line 1 column 5"),
    ])
    func reportsSyntaxErrorsLikeSerde(input: String, message: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(input) }
        do {
            _ = try JSONParser.parse(input)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xFF, 0x22]
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func limitsNesting() throws {
        let ok = String(repeating: "[", count: JSONParser.nestingDepthMax) + String(repeating: "]", count: JSONParser.nestingDepthMax)
        _ = try JSONParser.parse(ok)
        let deep = "[" + ok + "]"
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    @Test func writerEscapesControlCharactersAndWritesNonFiniteAsNull() {
        #expect(JSONWriter.string(.string("\u{01}\"")) == #""\u0001\"""#)
        #expect(JSONWriter.string(.double(.nan)) == "null")
        #expect(JSONWriter.string(.double(.infinity)) == "null")
    }
}

@Suite struct NumberParsingTests {
    @Test func doublesRoundTripBitExactly() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
            guard value.isFinite else { continue }
            let text = value.description.contains(".") || value.description.contains("e") ? value.description : value.description + ".0"
            guard case .double(let parsed) = try JSONParser.parse(text) else {
                Issue.record("\(text) did not parse as a double")
                continue
            }
            #expect(parsed.bitPattern == value.bitPattern, "\(text)")
        }
    }

    /// The fast path (≤19 digits, |exponent| ≤ 22) against Swift's own correctly rounded parser.
    @Test func fastPathMatchesCorrectRounding() throws {
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = []
        for _ in 0..<20_000 {
            texts.append(Float.random(in: -1...1, using: &rng).description)  // how clients send f32 vectors
            let digits = String(UInt64.random(in: 0...9_999_999_999_999_999, using: &rng))
            let point = Int.random(in: 0...digits.count, using: &rng)
            let decimal = String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
            let body = decimal.hasPrefix(".") ? "0" + decimal : decimal
            texts.append((Bool.random(using: &rng) ? "-" : "") + (body.hasSuffix(".") ? body + "0" : body)
                         + "e" + String(Int.random(in: -22...22, using: &rng)))
        }
        for text in texts {
            guard case .double(let parsed) = try JSONParser.parse(text) else {
                Issue.record("\(text) did not parse as a double")
                continue
            }
            #expect(parsed.bitPattern == Double(text)!.bitPattern, "\(text)")
        }
    }

    /// Up to 19 digits at any exponent (the Eisel-Lemire path) against Swift's correctly rounded
    /// parser: the doubles clients write for f32 vectors (17 digits), random digits at every
    /// decimal exponent a double reaches, and decimals exactly halfway between two doubles.
    @Test func longMantissasMatchCorrectRounding() throws {
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = []
        for _ in 0..<20_000 {
            texts.append(Double(Float.random(in: -1...1, using: &rng)).description)
            texts.append(Double(Float(bitPattern: UInt32.random(in: 0...0x7F7F_FFFF, using: &rng))).description)
            let digits = String(UInt64.random(in: 1_000_000_000_000_000...9_999_999_999_999_999_999, using: &rng))
            let kept = String(digits.prefix(Int.random(in: 1...19, using: &rng)))
            let fraction = kept.count > 1 ? ".\(kept.dropFirst())" : ""
            texts.append("\(kept.prefix(1))\(fraction)e\(Int.random(in: -330...300, using: &rng))")
            // Halfway: a 54-bit odd integer is exactly between two doubles.
            let half = (UInt64.random(in: (1 << 52)...((1 << 53) - 1), using: &rng) << 1) | 1
            texts.append("\(half).0")
            texts.append("\(half)e\(Int.random(in: -4...4, using: &rng))")
        }
        texts += ["9007199254740993.0", "9007199254740995e0", "1.7976931348623157e308", "2.2250738585072014e-308", "4.9406564584124654e-324",
                  "1e23", "8.98846567431158e307", "7.1508712085965075e-288", "0.30000000000000004", "123456789012345678e-5"]
        for text in texts {
            guard case .double(let parsed) = try JSONParser.parse(text) else {
                Issue.record("\(text) did not parse as a double")
                continue
            }
            #expect(parsed.bitPattern == Double(text)!.bitPattern, "\(text)")
        }
    }

    @Test func floatsAsWrittenByClients() throws {
        for (text, expected) in [("0.1", 0.1), ("-2.5e-3", -0.0025), ("1E2", 100.0), ("3.4028234663852886e38", 3.4028234663852886e38)] {
            #expect(try JSONParser.parse(text) == .double(expected))
        }
        let long = "0." + String(repeating: "1", count: 100)
        #expect(try JSONParser.parse(long) == .double(Double(long)!))
    }
}
