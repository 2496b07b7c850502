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

    /// Qdrant's results (qdrant-client's local mode reproduces them) for `{"d": "404"}` set at a key.
    @Test(arguments: [
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest[1]", #"{"nest":[{"a":"100","b":"200"}]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest[].nest", #"{"nest":[{"a":"100","b":"200","nest":{"d":"404"}}]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest[]", #"{"nest":[{"a":"100","b":"200","d":"404"}]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest[0]", #"{"nest":[{"a":"100","b":"200","d":"404"}]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest", #"{"nest":{"d":"404"}}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest.x", #"{"nest":{"x":{"d":"404"}}}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "other[0]", #"{"nest":[{"a":"100","b":"200"}],"other":[]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "other[].x", #"{"nest":[{"a":"100","b":"200"}],"other":[]}"#),
        (#"{"nest":[{"a":"100","b":"200"}]}"#, "nest[0].a.z", #"{"nest":[{"a":{"z":{"d":"404"}},"b":"200"}]}"#),
        (#"{"a":1}"#, "a.b", #"{"a":{"b":{"d":"404"}}}"#),
        (#"{"a":1}"#, "a[]", #"{"a":[]}"#),
        (#"{"a":[1,{"q":2}]}"#, "a[]", #"{"a":[{"d":"404"},{"q":2,"d":"404"}]}"#),
        (#"{"a":[[1],[2]]}"#, "a[][0]", #"{"a":[[{"d":"404"}],[{"d":"404"}]]}"#),
    ])
    func setAtKeyAsQdrant(stored: String, key: String, expected: String) throws {
        var payload = try obj(stored)
        PayloadPath.set(try obj(#"{"d":"404"}"#), into: &payload, at: key)
        #expect(payload == (try obj(expected)))
    }

    @Test func nullRemovesTheKeyItIsSetAt() throws {
        var payload = try obj(#"{"x":1,"y":{"z":2,"w":3}}"#)
        PayloadPath.set(try obj(#"{"x":null,"q":null}"#), into: &payload, at: nil)
        PayloadPath.set(try obj(#"{"z":null}"#), into: &payload, at: "y")
        #expect(payload == (try obj(#"{"y":{"w":3}}"#)))
    }

    @Test func deleteByPath() throws {
        var payload = try obj(#"{"a":1,"n":{"x":1,"y":2},"list":[{"a":1,"b":2},{"a":3}],"arr":[1,2,3]}"#)
        PayloadPath.delete("a", from: &payload)
        PayloadPath.delete("n.x", from: &payload)
        PayloadPath.delete("list[].a", from: &payload)
        PayloadPath.delete("arr[0]", from: &payload)
        PayloadPath.delete("list[1]", from: &payload)
        PayloadPath.delete("missing.path", from: &payload)
        #expect(payload == (try obj(#"{"n":{"y":2},"list":[{"b":2},{}],"arr":[1,2,3]}"#)))
    }
}
