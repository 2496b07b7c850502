import QuiverJSON
import Testing

struct Inner: Codable, Equatable {
    var size: UInt64
    var name: String?
}

struct Outer: Codable, Equatable {
    var inner: Inner
    var list: [Inner]
    var flag: Bool?
    var payload: JSONValue?
}

enum Color: String, StringEnum {
    case red, green
}

@Suite struct CodableTests {
    let decoder = JSONValueDecoder()

    func decodeError<T: Decodable>(_ type: T.Type, _ json: String) -> JSONDecodingError? {
        do {
            _ = try decoder.decode(type, from: Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesNestedValues() throws {
        let value = try decoder.decode(Outer.self, from: Array(#"{"inner":{"size":3},"list":[{"size":1,"name":"a"}],"payload":{"x":1.0}}"#.utf8))
        #expect(value.inner == Inner(size: 3))
        #expect(value.list == [Inner(size: 1, name: "a")])
        #expect(value.payload == .object(JSONObject([("x", .double(1.0))])))
    }

    @Test func nullCountsAsAbsentForOptionals() throws {
        let value = try decoder.decode(Inner.self, from: Array(#"{"size":1,"name":null}"#.utf8))
        #expect(value.name == nil)
    }

    @Test func typeErrorsNameTheField() {
        #expect(decodeError(Outer.self, #"{"inner":{"size":"x"},"list":[]}"#)?.description
            == #"inner.size: invalid type: string "x", expected an unsigned integer"#)
        #expect(decodeError(Outer.self, #"{"inner":{"size":1},"list":[{"size":-1}]}"#)?.description
            == "list[0].size: invalid value: integer `-1`, expected an unsigned integer of at most 64 bits")
        #expect(decodeError(Outer.self, #"{"inner":{"size":1.5},"list":[]}"#)?.description
            == "inner.size: invalid type: floating point `1.5`, expected an unsigned integer")
        #expect(decodeError(Outer.self, #"{"inner":{},"list":[]}"#)?.description == "inner: missing field `size`")
        #expect(decodeError(Outer.self, #"{"inner":{"size":1},"list":[],"flag":"yes"}"#)?.description
            == #"flag: invalid type: string "yes", expected a boolean"#)
    }

    @Test func syntaxErrorsAreMarked() {
        let error = decodeError(Inner.self, "{")
        #expect(error?.isSyntax == true)
        #expect(error?.description == "EOF while parsing an object at line 1 column 1")
    }

    @Test func unknownEnumValuesListTheChoices() {
        struct Holder: Codable { var color: Color }
        #expect(decodeError(Holder.self, #"{"color":"blue"}"#)?.description
            == "color: unknown variant `blue`, expected one of `red`, `green`")
    }

    @Test func encoderLeavesOutNilAndKeepsOrder() throws {
        let value = Outer(inner: Inner(size: 2), list: [], flag: nil, payload: .object(JSONObject([("b", .int(1)), ("a", .double(2.0))])))
        let text = String(decoding: try JSONValueEncoder().encodeBytes(value), as: UTF8.self)
        #expect(text == #"{"inner":{"size":2},"list":[],"payload":{"b":1,"a":2.0}}"#)
    }

    @Test func roundTripsThroughEncoderAndDecoder() throws {
        let value = Outer(inner: Inner(size: UInt64.max, name: "é"), list: [Inner(size: 0)], flag: true, payload: .array([.uint(UInt64.max)]))
        let encoded = try JSONValueEncoder().encode(value)
        #expect(try decoder.decode(Outer.self, from: encoded) == value)
    }

    struct Counts: Codable, Equatable {
        var limit: Int?
        var nested: [Int]?
    }

    @Test func negativeIntegersAreRefusedOnlyWhereIntegersAreUnsigned() throws {
        let body = Array(#"{"limit":-2,"nested":[1,-3]}"#.utf8)
        #expect(try decoder.decode(Counts.self, from: body) == Counts(limit: -2, nested: [1, -3]))
        JSONValueDecoder.$integersAreUnsigned.withValue(true) {
            do {
                _ = try decoder.decode(Counts.self, from: body)
                Issue.record("a negative count decoded")
            } catch {
                #expect((error as? JSONDecodingError)?.description == "limit: invalid value: integer `-2`, expected a non-negative integer")
            }
            #expect((try? decoder.decode(Counts.self, from: Array(#"{"limit":0,"nested":[2]}"#.utf8))) == Counts(limit: 0, nested: [2]))
            #expect(throws: JSONDecodingError.self) { try decoder.decode(Counts.self, from: Array(#"{"nested":[1,-3]}"#.utf8)) }
        }
    }
}
