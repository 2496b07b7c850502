#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-level JSON parser (RFC 8259).
///
/// Errors are worded as serde_json words them ("expected value at line 1 column 5") because Qdrant's
/// clients and users have seen those messages for years.
public struct JSONParser: ~Copyable {
    /// Deepest nesting of arrays and objects accepted; serde_json's recursion limit is the same.
    public static let nestingDepthMax = 128

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Parses one complete JSON document; anything but whitespace after it is an error.
    public static func parse(_ data: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = data.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                var parser = JSONParser(bytes: buffer)
                return try parser.parseDocument()
            }
        }
        if let result { return try result.get() }
        let copy = Array(data)
        return try copy.withUnsafeBufferPointer { buffer throws(JSONParseError) -> JSONValue in
            var parser = JSONParser(bytes: buffer)
            return try parser.parseDocument()
        }
    }

    public static func parse(_ string: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(string.utf8))
    }

    private mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw error("EOF while parsing a value") }
        let value = try parseValue()
        skipWhitespace()
        if index < bytes.count { throw error("trailing characters", advance: true) }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("EOF while parsing a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("expected value", advance: true)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let text = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for byte in text {
            guard index < bytes.count else { throw error("EOF while parsing a value") }
            guard bytes[index] == byte else { throw error("expected ident", advance: true) }
            index += 1
        }
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        if depth > Self.nestingDepthMax { throw error("recursion limit exceeded", advance: true) }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        guard index < bytes.count else { throw error("EOF while parsing an object") }
        if bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error("EOF while parsing an object") }
            guard bytes[index] == UInt8(ascii: "\"") else { throw error("key must be a string", advance: true) }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count else { throw error("EOF while parsing an object") }
            guard bytes[index] == UInt8(ascii: ":") else { throw error("expected `:`", advance: true) }
            index += 1
            skipWhitespace()
            object[key] = try parseValue()
            skipWhitespace()
            guard index < bytes.count else { throw error("EOF while parsing an object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(object)
            default: throw error("expected `,` or `}`", advance: true)
            }
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        guard index < bytes.count else { throw error("EOF while parsing a list") }
        if bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("EOF while parsing a list") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw error("expected `,` or `]`", advance: true)
            }
        }
    }

    /// Parses a string starting at its opening quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw error("invalid unicode code point")
                }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character (\\u0000-\\u001F) found while parsing a string", advance: true) }
            index += 1
        }
        // Slow path: with escapes.
        var scratch = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: scratch, as: UTF8.self) else {
                    throw error("invalid unicode code point")
                }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("EOF while parsing a string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"): try appendUnicodeEscape(into: &scratch)
                default: throw error("invalid escape")
                }
            default:
                if byte < 0x20 { throw error("control character (\\u0000-\\u001F) found while parsing a string", advance: true) }
                scratch.append(byte)
                index += 1
            }
        }
        throw error("EOF while parsing a string")
    }

    private mutating func readHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else {
            index = bytes.count
            throw error("EOF while parsing a string")
        }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid escape", advance: true)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private mutating func appendUnicodeEscape(into scratch: inout [UInt8]) throws(JSONParseError) {
        var scalarValue = try readHex4()
        if (0xD800...0xDBFF).contains(scalarValue) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("unexpected end of hex escape")
            }
            index += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw error("lone leading surrogate in hex escape") }
            scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(scalarValue) {
            throw error("lone leading surrogate in hex escape")
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw error("invalid unicode code point") }
        scratch.append(contentsOf: String(Character(scalar)).utf8)
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count else { throw error("EOF while parsing a value") }
        let integerStart = index
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error("invalid number", advance: true) }
        } else {
            guard isDigit(bytes[index]) else { throw error("invalid number", advance: true) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let integerEnd = index
        var isFloat = false
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isFloat = true
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number", advance: index < bytes.count) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isFloat = true
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number", advance: index < bytes.count) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if !isFloat, integerEnd - integerStart <= 18 {
            var magnitude: Int64 = 0
            for i in integerStart..<integerEnd { magnitude = magnitude * 10 + Int64(bytes[i] - UInt8(ascii: "0")) }
            return .int(negative ? -magnitude : magnitude)
        }
        if !isFloat {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if negative, let value = Int64(text) { return .int(value) }
            if !negative, let value = UInt64(text) { return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value) }
        }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<index])
        guard let value = Self.fastDouble(text) ?? Self.parseDouble(text), value.isFinite else {
            throw error("number out of range")
        }
        return .double(value)
    }

    static let powersOfTen: [Double] = (0...22).map { i in (0..<i).reduce(1.0) { r, _ in r * 10 } }

    /// Clinger's fast path: with at most 19 significant digits, a mantissa up to 2^53 and a decimal
    /// exponent within ±22, one multiplication or division by an exact power of ten gives the
    /// correctly rounded Double. Other numbers of at most 19 digits go to ``eiselLemire(_:_:)``; nil
    /// for the rest (then `strtod` decides).
    /// `text` is already validated JSON number syntax.
    static func fastDouble(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        var i = 0
        var negative = false
        if text[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var seenPoint = false
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: ".") {
                seenPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                break
            } else {
                if mantissa == 0 && c == UInt8(ascii: "0") {
                    if seenPoint { exponent -= 1 }  // leading zeros carry no significant digit
                } else {
                    digits += 1
                    if digits > 19 { return nil }
                    mantissa = mantissa * 10 + UInt64(c - UInt8(ascii: "0"))
                    if seenPoint { exponent -= 1 }
                }
            }
            i += 1
        }
        if i < text.count {
            i += 1
            var expNegative = false
            if text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") {
                expNegative = text[i] == UInt8(ascii: "-")
                i += 1
            }
            var e = 0
            while i < text.count {
                e = e * 10 + Int(text[i] - UInt8(ascii: "0"))
                if e > 1000 { return nil }
                i += 1
            }
            exponent += expNegative ? -e : e
        }
        guard mantissa <= 1 << 53, exponent >= -22, exponent <= 22 else {
            return eiselLemire(mantissa, exponent).map { negative ? -$0 : $0 }
        }
        var value = Double(mantissa)
        value = exponent < 0 ? value / powersOfTen[-exponent] : value * powersOfTen[exponent]
        return negative ? -value : value
    }

    /// `w` × 10^`q` correctly rounded, for any `w` of at most 19 digits (Lemire, "Number Parsing
    /// at a Gigabyte per Second", 2021): `w` times a 128-bit approximation of 5^q gives the
    /// significant bits; the power of two comes from q. Nil for results that would be subnormal,
    /// zero or infinite (then `strtod` decides).
    static func eiselLemire(_ w: UInt64, _ q: Int) -> Double? {
        guard w != 0, q >= -342, q <= 308 else { return nil }
        let shift = w.leadingZeroBitCount
        let normalized = w << shift
        let index = 2 * (q + 342)
        var (high, low) = normalized.multipliedFullWidth(by: powersOfFive[index])
        if high & 0x1FF == 0x1FF {
            // The truncated product may be one unit short in the bits that decide rounding: add
            // the next 64 bits of the power.
            let second = normalized.multipliedFullWidth(by: powersOfFive[index + 1]).high
            let (sum, carry) = low.addingReportingOverflow(second)
            low = sum
            if carry { high &+= 1 }
        }
        let upper = Int(high >> 63)
        var mantissa = high >> UInt64(upper + 9)
        // floor(log2(10^q)) + 63, and the exponent's bias.
        let power2 = (((152_170 + 65_536) * q) >> 16) + 63 + upper - shift + 1023
        guard power2 > 0 else { return nil }
        // Exactly halfway between two doubles (only possible when 5^q fits 64 bits): to even.
        if low <= 1, q >= -4, q <= 23, mantissa & 3 == 1, mantissa << UInt64(upper + 9) == high {
            mantissa &= ~1
        }
        mantissa += mantissa & 1
        mantissa >>= 1
        var exponent = power2
        if mantissa >= 2 << 52 {
            mantissa = 1 << 52
            exponent += 1
        }
        mantissa &= ~(1 << 52)
        guard exponent < 0x7FF else { return nil }
        return Double(bitPattern: UInt64(exponent) << 52 | mantissa)
    }

    /// Longest number text parsed without a heap allocation.
    static let shortNumberBytesMax = 63

    /// `strtod` over the validated number text; short numbers (all realistic ones) are copied to a
    /// stack buffer for the terminating NUL instead of allocating a String.
    static func parseDouble(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        if text.count <= shortNumberBytesMax {
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: shortNumberBytesMax + 1) { buffer in
                for i in 0..<text.count { buffer[i] = CChar(bitPattern: text[i]) }
                buffer[text.count] = 0
                return strtod(buffer.baseAddress!, nil)
            }
        }
        return Double(String(decoding: text, as: UTF8.self))
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// An error at the current position; `advance` points at the offending byte itself (serde reports
    /// the column of the byte it just read).
    private func error(_ message: String, advance: Bool = false) -> JSONParseError {
        let end = min(advance ? index + 1 : index, bytes.count)
        var line = 1
        var column = 0
        for i in 0..<end {
            if bytes[i] == 0x0A {
                line += 1
                column = 0
            } else {
                column += 1
            }
        }
        return JSONParseError(message: message, line: line, column: column)
    }
}

/// A syntax error, with the 1-based line and column of the byte where it was found.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let line: Int
    public let column: Int

    public var description: String { "\(message) at line \(line) column \(column)" }
}
