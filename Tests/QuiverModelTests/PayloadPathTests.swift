import QuiverJSON
import QuiverModel
import Testing

func obj(_ json: String) throws -> JSONObject {
    try #require(JSONParser.parse(json).objectValue)
}

@Suite struct PayloadPathTests {
    @Test func setMergesAtTopLevelOrAtAKey() throws {
        var payload = try obj(#"{"a":1,"n":{"x":1}}"#)
        PayloadPath.set(try obj(#"{"b":2,"a":3}"#), into: &payload, at: nil)
        #expect(payload == (try obj(#"{"a":3,"n":{"x":1},"b":2}"#)))
        PayloadPath.set(try obj(#"{"y":2}"#), into: &payload, at: "n")
        PayloadPath.set(try obj(#"{"deep":true}"#), into: &payload, at: "m.k")
        #expect(payload == (try obj(#"{"a":3,"n":{"x":1,"y":2},"b":2,"m":{"k":{"deep":true}}}"#)))
    }

    @Test func setReachesIntoArrays() throws {
        var payload = try obj(#"{"list":[{"a":1},{"a":2}]}"#)
        PayloadPath.set(try obj(#"{"b":0}"#), into: &payload, at: "list[]")
        PayloadPath.set(try obj(#"{"c":9}"#), into: &payload, at: "list[1]")
        #expect(payload == (try obj(#"{"list":[{"a":1,"b":0},{"a":2,"b":0,"c":9}]}"#)))
    }

    @Test func deleteByPath() throws {
        var payload = try obj(#"{"a":1,"n":{"x":1,"y":2},"list":[{"a":1,"b":2},{"a":3}],"arr":[1,2,3]}"#)
        PayloadPath.delete("a", from: &payload)
        PayloadPath.delete("n.x", from: &payload)
        PayloadPath.delete("list[].a", from: &payload)
        PayloadPath.delete("arr[0]", from: &payload)
        PayloadPath.delete("missing.path", from: &payload)
        #expect(payload == (try obj(#"{"n":{"y":2},"list":[{"b":2},{}],"arr":[2,3]}"#)))
    }
}
