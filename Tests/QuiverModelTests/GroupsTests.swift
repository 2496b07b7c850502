import QuiverJSON
import QuiverModel
import Testing

@Suite struct GroupsTests {
    @Test func groupIDsAreStringsAndIntegersAndEveryElementOfAnArray() throws {
        func ids(_ payload: JSONValue, _ path: String) -> [JSONValue] {
            guard case .object(let object) = payload else { return [] }
            return PointGroup.ids(of: object, at: path)
        }
        #expect(ids(["g": 3], "g") == [.int(3)])
        #expect(ids(["g": ["a", "b", "a", 2]], "g") == ["a", "b", .int(2)])
        #expect(ids(["n": ["g": "x"]], "n.g") == ["x"])
        #expect(ids(["g": []], "g").isEmpty)
        #expect(ids(["h": 1], "g").isEmpty)
        // One value that cannot name a group keeps the point out of every group.
        #expect(ids(["g": ["a", 1.5]], "g").isEmpty)
        #expect(ids(["g": true], "g").isEmpty)
        #expect(PointGroup(id: .int(7), hits: []).pointID == .number(7))
        #expect(PointGroup(id: .int(-1), hits: []).pointID == nil)
        #expect(PointGroup(id: "not a uuid", hits: []).pointID == nil)
    }

    @Test func requestsTakeQdrantsDefaultsAndRefuseZeroCounts() throws {
        let request = try PointsJSON.queryGroupsRequest(["query": [1, 0], "group_by": "g", "with_lookup": ["collection": "other", "with_payload": false]])
        #expect(request.groupSize == 3 && request.limit == 10 && request.groupBy == "g")
        #expect(request.withLookup?.collection == "other" && request.withLookup?.withPayload == WithPayload.none)
        do {
            _ = try PointsJSON.queryGroupsRequest(["group_by": "g", "limit": 0])
            Issue.record("no error")
        } catch {
            #expect(error.isValidation && error.path == "limit")
        }
        let matrix = try PointsJSON.matrixRequest([:])
        #expect(matrix.sample == 10 && matrix.limit == 3 && matrix.using == "")
        #expect(throws: JSONDecodingError.self) { try PointsJSON.matrixRequest(["sample": 1]) }
    }
}
