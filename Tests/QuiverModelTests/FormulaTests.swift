import Foundation
import QuiverJSON
import QuiverModel
import Testing

@Suite struct FormulaTests {
    func formula(_ json: JSONValue, defaults: JSONValue = [:]) throws -> Formula {
        guard case .formula(let formula)? = try PointsJSON.queryRequest(["prefetch": ["query": [1]], "query": ["formula": json, "defaults": defaults]]).query
        else { throw JSONDecodingError(path: "query", message: "not a formula") }
        return formula
    }

    func point(_ payload: JSONValue, scores: [Float?] = [0.5]) -> FormulaPoint {
        FormulaPoint(id: .number(1), payload: payload.objectValue ?? JSONObject(), scores: scores) { $0 == "v" }
    }

    @Test func evaluatesScoresPayloadConditionsAndDecays() throws {
        let boosted = try formula(["sum": ["$score", ["mult": [2, "price"]], ["key": "tag", "match": ["value": "x"]]]])
        #expect(try boosted.score(point(["price": 1.5, "tag": "x"])) == 4.5)
        #expect(try boosted.score(point(["price": 1.5, "tag": "y"])) == 3.5)
        let defaulted = try formula(["sum": ["price", "$score[1]"]], defaults: ["price": 10, "$score[1]": 0.25])
        #expect(try defaulted.score(point([:])) == 10.25)
        let decay = try formula(["exp_decay": ["x": "age", "scale": 2, "midpoint": 0.5]])
        #expect(abs(try decay.score(point(["age": 2])) - 0.5) < 1e-6)
        let linear = try formula(["lin_decay": ["x": "age", "target": 1, "scale": 4, "midpoint": 0.5]])
        #expect(try linear.score(point(["age": 9])) == 0)
        let gauss = try formula(["gauss_decay": ["x": "age", "scale": 3, "midpoint": 0.25]])
        #expect(abs(try gauss.score(point(["age": 3])) - 0.25) < 1e-6)
        let byZero = try formula(["div": ["left": 1, "right": "zero", "by_zero_default": 7]])
        #expect(try byZero.score(point(["zero": 0])) == 7)
        let geo = try formula(["geo_distance": ["origin": ["lat": 0, "lon": 0], "to": "loc"]])
        #expect(abs(try geo.score(point(["loc": ["lat": 0, "lon": 1]])) - 111_195) < 5)
        let days = try formula(["div": ["left": ["sum": [["datetime_key": "ts"], ["neg": ["datetime": "2024-01-01T00:00:00Z"]]]], "right": 86400]])
        #expect(try days.score(point(["ts": "2024-01-03T00:00:00Z"])) == 2)
        let hasVector = try formula(["has_vector": "v"])
        #expect(try hasVector.score(point([:])) == 1)
    }

    @Test func refusesWhatCannotBeEvaluated() throws {
        #expect(throws: FormulaError.self) { try formula("missing").score(point([:])) }
        #expect(throws: FormulaError.self) { try formula("tag").score(point(["tag": "text"])) }
        #expect(throws: FormulaError.self) { try formula(["sqrt": -1]).score(point([:])) }
        #expect(throws: FormulaError.self) { try formula(["pow": ["base": 10, "exponent": 400]]).score(point([:])) }
        #expect(throws: JSONDecodingError.self) { try formula("$score[1x]") }
        #expect(throws: JSONDecodingError.self) { try formula(["exp_decay": ["x": 1, "midpoint": 1]]) }
        #expect(throws: JSONDecodingError.self) { try formula(["max": []]) }
    }
}
