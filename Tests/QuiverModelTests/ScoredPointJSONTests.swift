import QuiverJSON
import QuiverModel
import Testing

/// A search's points are written straight into the response; the bytes must be those of the
/// points' JSON values, in every form a point takes.
@Suite struct ScoredPointJSONTests {
    @Test func writtenPointsEqualTheirJSON() throws {
        let uuid = try #require(PointID(uuidString: "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"))
        let payload = JSONObject([("b", .int(1)), ("a", .array([.string("x\"y"), .double(0.5), .null]))])
        var ordered = ScoredPoint(id: .number(3), version: 9, score: 0.25, payload: nil, vectors: nil)
        ordered.orderValue = .int(42)
        let points = [
            ScoredPoint(id: .number(1), version: 0, score: 0.1, payload: nil, vectors: nil),
            ScoredPoint(id: uuid, version: 7, score: -3.4028235e38, payload: payload, vectors: ["": [0.1, -2, 3e-7]]),
            ScoredPoint(id: .number(2), version: 1, score: 1e-8, payload: JSONObject(), vectors: ["a": [1], "b": [2, 3]],
                        sparse: ["s": SparseVector(indices: [4, 1], values: [0.5, 2])],
                        multi: ["m": MultiVector(dimension: 2, flat: [1, 2, 3, 4])]),
            ScoredPoint(id: .number(5), version: 2, score: 30_000_000, payload: nil, vectors: [:],
                        multi: ["": MultiVector(dimension: 1, flat: [7, 8])]),
            ordered,
        ]
        for unnamed in [true, false] {
            for point in points {
                var writer = JSONWriter()
                point.write(to: &writer, unnamedVector: unnamed)
                #expect(writer.bytes == JSONWriter.write(point.json(unnamedVector: unnamed)),
                        "\(String(decoding: writer.bytes, as: UTF8.self))")
            }
        }
    }
}
