public import QuiverJSON
import Foundation
import Yams

/// The merged configuration document: YAML files and environment overrides, layered in Qdrant's
/// order, read through typed getters that remember which keys were used so unknown keys can be
/// reported.
public struct ConfigTree: Sendable {
    public private(set) var root: JSONObject = JSONObject()
    private var used: Set<String> = []

    public init() {}

    // MARK: Building

    /// Merges a YAML document over the tree; objects merge key by key, anything else replaces.
    public mutating func merge(yaml text: String, source: String) throws(ConfigError) {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw ConfigError("cannot parse \(source): \(error)")
        }
        guard let loaded else { return }
        guard case .object(let object) = Self.convert(loaded) else {
            throw ConfigError("\(source) must be a YAML mapping at the top level")
        }
        root = Self.deepMerge(root, object)
    }

    /// Applies `QDRANT__SECTION__KEY=value` (and `QUIVER__…`) variables: the path is the name split
    /// at double underscores, lower-cased; the value is read as a YAML scalar (so `true`, `6333`
    /// and `0.5` get their types).
    public mutating func applyEnvironment(_ environment: [String: String]) {
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            let prefix: String
            if name.hasPrefix("QDRANT__") {
                prefix = "QDRANT__"
            } else if name.hasPrefix("QUIVER__") {
                prefix = "QUIVER__"
            } else {
                continue
            }
            let path = name.dropFirst(prefix.count).components(separatedBy: "__").map { $0.lowercased() }
            guard !path.contains(where: \.isEmpty) else { continue }
            let scalar = (try? Yams.load(yaml: value)).map(Self.convert) ?? .string(value)
            let leaf: JSONValue = switch scalar {
            case .array, .object: .string(value)
            default: scalar
            }
            root = Self.set(root, path[...], leaf)
        }
    }

    static func convert(_ any: Any) -> JSONValue {
        switch any {
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let d as Double: return .double(d)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(convert))
        case let m as [String: Any]: return .object(JSONObject(m.keys.sorted().map { ($0, convert(m[$0]!)) }))
        case let m as [AnyHashable: Any]:
            return .object(JSONObject(m.map { ("\($0.key)", convert($0.value)) }.sorted { $0.0 < $1.0 }))
        default: return .null
        }
    }

    static func deepMerge(_ base: JSONObject, _ overlay: JSONObject) -> JSONObject {
        var result = base
        for (key, value) in overlay {
            if case .object(let inner) = value, case .object(let existing)? = result[key] {
                result[key] = .object(deepMerge(existing, inner))
            } else {
                result[key] = value
            }
        }
        return result
    }

    static func set(_ object: JSONObject, _ path: ArraySlice<String>, _ value: JSONValue) -> JSONObject {
        var result = object
        guard let head = path.first else { return result }
        if path.count == 1 {
            result[head] = value
        } else {
            let child = result[head]?.objectValue ?? JSONObject()
            result[head] = .object(set(child, path.dropFirst(), value))
        }
        return result
    }

    // MARK: Reading

    private mutating func lookup(_ path: String) -> JSONValue? {
        used.insert(path)
        var current: JSONValue = .object(root)
        for part in path.split(separator: ".") {
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current.isNull ? nil : current
    }

    /// True when `path` is set to null (in a file, or `null` in the environment).
    public mutating func isNull(_ path: String) -> Bool {
        used.insert(path)
        var current: JSONValue = .object(root)
        for part in path.split(separator: ".") {
            guard let next = current[String(part)] else { return false }
            current = next
        }
        return current.isNull || current == .string("null")
    }

    public mutating func string(_ path: String) throws(ConfigError) -> String? {
        switch lookup(path) {
        case nil: return nil
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        case let other?: throw ConfigError("\(path): expected a string, found \(other.kindDescription)")
        }
    }

    public mutating func int(_ path: String) throws(ConfigError) -> Int? {
        switch lookup(path) {
        case nil: return nil
        case .int(let i): return Int(i)
        case .string(let s):
            guard let i = Int(s.trimmingSpaces) else { throw ConfigError("\(path): expected an integer, found \"\(s)\"") }
            return i
        case let other?: throw ConfigError("\(path): expected an integer, found \(other.kindDescription)")
        }
    }

    public mutating func double(_ path: String) throws(ConfigError) -> Double? {
        switch lookup(path) {
        case nil: return nil
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string(let s):
            guard let d = Double(s.trimmingSpaces) else { throw ConfigError("\(path): expected a number, found \"\(s)\"") }
            return d
        case let other?: throw ConfigError("\(path): expected a number, found \(other.kindDescription)")
        }
    }

    public mutating func bool(_ path: String) throws(ConfigError) -> Bool? {
        switch lookup(path) {
        case nil: return nil
        case .bool(let b): return b
        case .string(let s):
            switch s.trimmingSpaces.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw ConfigError("\(path): expected true or false, found \"\(s)\"")
            }
        case let other?: throw ConfigError("\(path): expected true or false, found \(other.kindDescription)")
        }
    }

    /// A list of strings: a YAML sequence, or one string of comma-separated items (as an environment
    /// variable gives it).
    public mutating func strings(_ path: String) throws(ConfigError) -> [String]? {
        switch lookup(path) {
        case nil: return nil
        case .string(let s): return s.split(separator: ",").map(\.trimmingSpaces).filter { !$0.isEmpty }
        case .array(let items):
            var result: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw ConfigError("\(path): expected a list of strings, found \(item.kindDescription) in it") }
                result.append(s)
            }
            return result
        case let other?: throw ConfigError("\(path): expected a list of strings, found \(other.kindDescription)")
        }
    }

    /// Marks a whole section as known without reading it (keys reserved for later features).
    public mutating func accept(_ path: String) {
        used.insert(path)
    }

    /// Leaf keys present in the tree that no getter asked for.
    public func unknownKeys() -> [String] {
        var result: [String] = []
        func walk(_ object: JSONObject, _ prefix: String) {
            for (key, value) in object {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                if used.contains(path) { continue }
                if case .object(let inner) = value, !inner.isEmpty {
                    walk(inner, path)
                } else {
                    result.append(path)
                }
            }
        }
        walk(root, "")
        return result.sorted()
    }
}

public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "configuration error: \(message)" }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
