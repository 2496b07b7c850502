public import QuiverJSON
import Foundation

/// `{"formula": …, "defaults": …}`: each point its prefetches found scored again by an
/// expression over its prefetch scores, payload values and conditions.
public struct Formula: Codable, Sendable, Equatable {
    public var expression: Expression
    /// Values for payload paths a point lacks, and for `$score[i]` of prefetches that did not
    /// find it (keys as written, `$score` parsed like a variable).
    public var defaults: JSONObject
}

public enum DecayKind: String, Codable, Sendable {
    case linear = "lin_decay", exponential = "exp_decay", gaussian = "gauss_decay"
}

/// Qdrant's formula expressions (v1.19, with `max`, `min` and `acosh` of later versions).
public indirect enum Expression: Codable, Sendable, Equatable {
    case constant(Double)
    /// A payload path: its number, or the default.
    case variable(String)
    /// `$score[i]`: the point's score in prefetch i (`$score` is prefetch 0).
    case score(Int)
    /// 1 when the condition holds, 0 otherwise.
    case condition(Condition)
    case geoDistance(origin: GeoPoint, to: String)
    /// Seconds since the epoch.
    case datetime(Double)
    case datetimeKey(String)
    case mult([Expression]), sum([Expression]), max([Expression]), min([Expression])
    case neg(Expression), abs(Expression), sqrt(Expression), exp(Expression), log10(Expression), ln(Expression), acosh(Expression)
    case div(Expression, Expression, byZeroDefault: Double?)
    case pow(Expression, Expression)
    case decay(DecayKind, x: Expression, target: Expression?, scale: Double, midpoint: Double)

    /// Whether any condition appears (the point's vectors are then needed for `has_vector`).
    public var hasConditions: Bool {
        switch self {
        case .condition: true
        case .constant, .variable, .score, .geoDistance, .datetime, .datetimeKey: false
        case .mult(let list), .sum(let list), .max(let list), .min(let list): list.contains(where: \.hasConditions)
        case .neg(let e), .abs(let e), .sqrt(let e), .exp(let e), .log10(let e), .ln(let e), .acosh(let e): e.hasConditions
        case .div(let a, let b, _), .pow(let a, let b): a.hasConditions || b.hasConditions
        case .decay(_, let x, let target, _, _): x.hasConditions || (target?.hasConditions ?? false)
        }
    }

    /// Every condition, to prepare them as filters.
    public func mapConditions(_ transform: (Condition) throws -> Condition) rethrows -> Expression {
        switch self {
        case .condition(let c): return .condition(try transform(c))
        case .constant, .variable, .score, .geoDistance, .datetime, .datetimeKey: return self
        case .mult(let list): return .mult(try list.map { try $0.mapConditions(transform) })
        case .sum(let list): return .sum(try list.map { try $0.mapConditions(transform) })
        case .max(let list): return .max(try list.map { try $0.mapConditions(transform) })
        case .min(let list): return .min(try list.map { try $0.mapConditions(transform) })
        case .neg(let e): return .neg(try e.mapConditions(transform))
        case .abs(let e): return .abs(try e.mapConditions(transform))
        case .sqrt(let e): return .sqrt(try e.mapConditions(transform))
        case .exp(let e): return .exp(try e.mapConditions(transform))
        case .log10(let e): return .log10(try e.mapConditions(transform))
        case .ln(let e): return .ln(try e.mapConditions(transform))
        case .acosh(let e): return .acosh(try e.mapConditions(transform))
        case .div(let a, let b, let d): return .div(try a.mapConditions(transform), try b.mapConditions(transform), byZeroDefault: d)
        case .pow(let a, let b): return .pow(try a.mapConditions(transform), try b.mapConditions(transform))
        case .decay(let kind, let x, let target, let scale, let midpoint):
            return .decay(kind, x: try x.mapConditions(transform), target: try target?.mapConditions(transform), scale: scale, midpoint: midpoint)
        }
    }
}

/// Why a formula could not score a point: a 400 with this message.
public struct FormulaError: Error, Sendable {
    public let message: String
}

/// What a formula reads of one point.
public struct FormulaPoint {
    public let id: PointID
    public let payload: JSONObject
    public let scores: [Float?]
    public let hasVector: (String) -> Bool

    public init(id: PointID, payload: JSONObject, scores: [Float?], hasVector: @escaping (String) -> Bool) {
        self.id = id
        self.payload = payload
        self.scores = scores
        self.hasVector = hasVector
    }
}

extension Formula {
    /// The point's score, as float32; a result that is not finite is an error, as in Qdrant.
    public func score(_ point: FormulaPoint) throws(FormulaError) -> Float {
        let value = try evaluate(expression, point)
        let score = Float(value)
        guard score.isFinite else { throw FormulaError(message: "The expression \(value) as f32 = \(score) produced a non-finite number") }
        return score
    }

    func evaluate(_ expression: Expression, _ point: FormulaPoint) throws(FormulaError) -> Double {
        func nonFinite(_ text: String) -> FormulaError { FormulaError(message: "The expression \(text) produced a non-finite number") }
        switch expression {
        case .constant(let value):
            return value
        case .score(let index):
            if index < point.scores.count, let score = point.scores[index] { return Double(score) }
            return defaults["$score[\(index)]"]?.doubleValue ?? 0
        case .variable(let path):
            let value = try payloadValue(path, point)
            guard let number = value.doubleValue, !value.isBool else {
                throw FormulaError(message: "Expected number value for \(path) in the payload and/or in the formula defaults. Error: Value is not a number")
            }
            return number
        case .condition(let condition):
            return Filter(must: [condition]).matches(id: point.id, payload: point.payload, hasVector: point.hasVector) ? 1 : 0
        case .geoDistance(let origin, let to):
            guard let destination = GeoPoint(json: try payloadValue(to, point)) else {
                throw FormulaError(message: "Expected geo point for \(to) in the payload and/or in the formula defaults.")
            }
            return origin.distance(to: destination)
        case .datetime(let seconds):
            return seconds
        case .datetimeKey(let path):
            guard let text = try payloadValue(path, point).stringValue, let micros = Datetime.parse(text) else {
                throw FormulaError(message: "Expected datetime for \(path) in the payload and/or in the formula defaults.")
            }
            return Double(micros) / 1_000_000
        case .mult(let factors):
            var product = 1.0
            for factor in factors {
                let value = try evaluate(factor, point)
                if value == 0 { return value }
                product *= value
            }
            return product
        case .sum(let terms):
            var total = 0.0
            for term in terms { total += try evaluate(term, point) }
            return total
        case .max(let operands):
            var result = -Double.infinity
            for operand in operands { result = Swift.max(result, try evaluate(operand, point)) }
            return result
        case .min(let operands):
            var result = Double.infinity
            for operand in operands { result = Swift.min(result, try evaluate(operand, point)) }
            return result
        case .neg(let e):
            return -(try evaluate(e, point))
        case .abs(let e):
            return Swift.abs(try evaluate(e, point))
        case .div(let left, let right, let byZeroDefault):
            let l = try evaluate(left, point)
            if l == 0 { return l }
            let r = try evaluate(right, point)
            if r == 0 {
                if let byZeroDefault { return byZeroDefault }
                throw nonFinite("\(l)/\(r)")
            }
            let result = l / r
            guard result.isFinite else { throw nonFinite("\(l)/\(r)") }
            return result
        case .sqrt(let e):
            let value = try evaluate(e, point)
            guard value >= 0 else { throw nonFinite("√\(value)") }
            return value.squareRoot()
        case .pow(let base, let exponent):
            let b = try evaluate(base, point), x = try evaluate(exponent, point)
            let result = Foundation.pow(b, x)
            guard result.isFinite else { throw nonFinite("\(b)^\(x)") }
            return result
        case .exp(let e):
            let value = try evaluate(e, point)
            let result = Foundation.exp(value)
            guard result.isFinite else { throw nonFinite("exp(\(value))") }
            return result
        case .log10(let e):
            let value = try evaluate(e, point)
            guard value > 0 else { throw nonFinite("log10(\(value))") }
            return Foundation.log10(value)
        case .ln(let e):
            let value = try evaluate(e, point)
            guard value > 0 else { throw nonFinite("ln(\(value))") }
            return Foundation.log(value)
        case .acosh(let e):
            let value = try evaluate(e, point)
            guard value >= 1 else { throw nonFinite("acosh(\(value))") }
            return Foundation.acosh(value)
        case .decay(let kind, let xExpression, let targetExpression, let scale, let midpoint):
            let x = try evaluate(xExpression, point)
            let target = try targetExpression.map { e throws(FormulaError) in try evaluate(e, point) } ?? 0
            switch kind {
            case .linear:
                return Swift.max(0, -((1 - midpoint) / scale) * Swift.abs(x - target) + 1)
            case .exponential:
                return Foundation.exp(Foundation.log(midpoint) / scale * Swift.abs(x - target))
            case .gaussian:
                let diff = x - target
                return Foundation.exp(Foundation.log(midpoint) / (scale * scale) * diff * diff)
            }
        }
    }

    /// The value at `path`: the payload's (one value, or the list of several), else the default.
    func payloadValue(_ path: String, _ point: FormulaPoint) throws(FormulaError) -> JSONValue {
        var values: [JSONValue] = []
        for value in PayloadPath.values(path, in: .object(point.payload)) {
            if case .array(let list) = value { values += list } else { values.append(value) }
        }
        if values.isEmpty, let fallback = defaults[path] {
            if case .array(let list) = fallback { values = list } else { values = [fallback] }
        }
        guard !values.isEmpty else { throw FormulaError(message: "No value found for \(path) in the payload nor the formula defaults") }
        return values.count == 1 ? values[0] : .array(values)
    }
}

extension JSONValue {
    var isBool: Bool { if case .bool = self { true } else { false } }
}

extension PointsJSON {
    /// `FormulaQuery`: `formula` and `defaults`.
    static func formula(_ object: JSONObject, _ path: String) throws(Failure) -> Formula {
        try allowOnly(object, ["formula", "defaults"], path)
        var defaults = JSONObject()
        if let raw = object["defaults"], !raw.isNull {
            for (key, value) in try self.object(raw, join(path, "defaults")) {
                // `$score` and `$score[0]` name the same default.
                if case .score(let index) = try variable(key, join(path, "defaults")) { defaults["$score[\(index)]"] = value } else { defaults[key] = value }
            }
        }
        return Formula(expression: try expression(object["formula"]!, join(path, "formula")), defaults: defaults)
    }

    static func variable(_ text: String, _ path: String) throws(Failure) -> Expression {
        guard text.hasPrefix("$score") else { return .variable(text) }
        let rest = text.dropFirst(6)
        if rest.isEmpty { return .score(0) }
        guard rest.first == "[", rest.last == "]" else { throw fail(path, "Invalid score pattern: \(text)") }
        let digits = rest.dropFirst().dropLast()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let index = Int(digits) else {
            throw fail(path, "Invalid score pattern: \(text)")
        }
        return .score(index)
    }

    static func expression(_ value: JSONValue, _ path: String) throws(Failure) -> Expression {
        switch value {
        case .int, .uint, .double:
            return .constant(value.doubleValue!)
        case .string(let text):
            return try variable(text, path)
        case .object(let object):
            func one(_ key: String) throws(Failure) -> Expression {
                try allowOnly(object, [key], path)
                return try expression(object[key]!, join(path, key))
            }
            func list(_ key: String) throws(Failure) -> [Expression] {
                try allowOnly(object, [key], path)
                var result: [Expression] = []
                for (i, element) in try array(object[key]!, join(path, key)).enumerated() { result.append(try expression(element, "\(join(path, key))[\(i)]")) }
                return result
            }
            if object["mult"] != nil { return .mult(try list("mult")) }
            if object["sum"] != nil { return .sum(try list("sum")) }
            if object["max"] != nil {
                let operands = try list("max")
                guard !operands.isEmpty else { throw fail(join(path, "max"), "`max` needs at least one operand") }
                return .max(operands)
            }
            if object["min"] != nil {
                let operands = try list("min")
                guard !operands.isEmpty else { throw fail(join(path, "min"), "`min` needs at least one operand") }
                return .min(operands)
            }
            if object["neg"] != nil { return .neg(try one("neg")) }
            if object["abs"] != nil { return .abs(try one("abs")) }
            if object["sqrt"] != nil { return .sqrt(try one("sqrt")) }
            if object["exp"] != nil { return .exp(try one("exp")) }
            if object["log10"] != nil { return .log10(try one("log10")) }
            if object["ln"] != nil { return .ln(try one("ln")) }
            if object["acosh"] != nil { return .acosh(try one("acosh")) }
            if let raw = object["div"] {
                try allowOnly(object, ["div"], path)
                let p = join(path, "div")
                let body = try self.object(raw, p)
                try allowOnly(body, ["left", "right", "by_zero_default"], p)
                guard let left = body["left"] else { throw fail(p, "missing field `left`") }
                guard let right = body["right"] else { throw fail(p, "missing field `right`") }
                var byZero: Double?
                if let d = body["by_zero_default"], !d.isNull {
                    guard let number = d.doubleValue else { throw fail(join(p, "by_zero_default"), "invalid type: \(d.kindDescription), expected a number") }
                    byZero = number
                }
                return .div(try expression(left, join(p, "left")), try expression(right, join(p, "right")), byZeroDefault: byZero)
            }
            if let raw = object["pow"] {
                try allowOnly(object, ["pow"], path)
                let p = join(path, "pow")
                let body = try self.object(raw, p)
                try allowOnly(body, ["base", "exponent"], p)
                guard let base = body["base"] else { throw fail(p, "missing field `base`") }
                guard let exponent = body["exponent"] else { throw fail(p, "missing field `exponent`") }
                return .pow(try expression(base, join(p, "base")), try expression(exponent, join(p, "exponent")))
            }
            if let raw = object["geo_distance"] {
                try allowOnly(object, ["geo_distance"], path)
                let p = join(path, "geo_distance")
                let body = try self.object(raw, p)
                try allowOnly(body, ["origin", "to"], p)
                guard let originValue = body["origin"], let origin = GeoPoint(json: originValue) else { throw fail(join(p, "origin"), "expected a geo point `{\"lon\", \"lat\"}`") }
                guard let to = body["to"]?.stringValue else { throw fail(join(p, "to"), "missing field `to` (a payload path)") }
                return .geoDistance(origin: origin, to: to)
            }
            if let raw = object["datetime"] {
                try allowOnly(object, ["datetime"], path)
                guard let text = raw.stringValue, let micros = Datetime.parse(text) else {
                    throw fail(join(path, "datetime"), "Expected datetime in supported format for \(raw.stringValue ?? raw.kindDescription)")
                }
                return .datetime(Double(micros) / 1_000_000)
            }
            if let raw = object["datetime_key"] {
                try allowOnly(object, ["datetime_key"], path)
                guard let key = raw.stringValue else { throw fail(join(path, "datetime_key"), "invalid type: \(raw.kindDescription), expected a string") }
                return .datetimeKey(key)
            }
            for kind in [DecayKind.linear, .exponential, .gaussian] {
                guard let raw = object[kind.rawValue] else { continue }
                try allowOnly(object, [kind.rawValue], path)
                let p = join(path, kind.rawValue)
                let body = try self.object(raw, p)
                try allowOnly(body, ["x", "target", "scale", "midpoint"], p)
                guard let x = body["x"] else { throw fail(p, "missing field `x`") }
                let target = try body["target"].flatMap { $0.isNull ? nil : $0 }.map { v throws(Failure) in try expression(v, join(p, "target")) }
                let scale = body["scale"].flatMap { $0.isNull ? nil : $0.doubleValue } ?? 1
                let midpoint = body["midpoint"].flatMap { $0.isNull ? nil : $0.doubleValue } ?? 0.5
                if kind == .linear {
                    guard (0...1).contains(midpoint) else { throw fail(join(p, "midpoint"), "Linear decay midpoint should be in the range [0.0, 1.0], got \(midpoint)") }
                } else {
                    guard midpoint > 0, midpoint < 1 else { throw fail(join(p, "midpoint"), "Decay midpoint should be in the range (0.0, 1.0), got \(midpoint)") }
                }
                guard scale > 0 else { throw fail(join(p, "scale"), "Scale must be non-zero positive, got \(scale)") }
                return .decay(kind, x: try expression(x, join(p, "x")), target: target, scale: scale, midpoint: midpoint)
            }
            return .condition(try condition(value, path))
        default:
            throw fail(path, "invalid type: \(value.kindDescription), expected a number, a variable or an expression")
        }
    }
}
