public import QuiverJSON

/// Field-level validation problems, collected so one response can name all of them.
///
/// Rendered as Qdrant renders them: `[vectors.size: value 0 invalid, must be from 1 to 65536; …]`.
public struct ValidationErrors: Error, Sendable, Equatable {
    public struct Issue: Sendable, Equatable {
        public let field: String
        public let message: String
    }

    public private(set) var issues: [Issue] = []

    public init() {}

    public var isEmpty: Bool { issues.isEmpty }

    public mutating func add(_ field: String, _ message: String) {
        issues.append(Issue(field: field, message: message))
    }

    /// Checks `min <= value <= max` with Qdrant's wording for a range failure.
    public mutating func range<T: Comparable & CustomStringConvertible>(_ field: String, _ value: T?, min: T? = nil, max: T? = nil) {
        guard let value else { return }
        if let min, value < min {
            add(field, "value \(value) invalid, \(Self.rangeText(min: min, max: max))")
        } else if let max, value > max {
            add(field, "value \(value) invalid, \(Self.rangeText(min: min, max: max))")
        }
    }

    private static func rangeText<T>(min: T?, max: T?) -> String {
        switch (min, max) {
        case (let min?, nil): "must be \(min) or larger"
        case (let min?, let max?): "must be from \(min) to \(max)"
        case (nil, let max?): "must be \(max) or smaller"
        case (nil, nil): "out of range"
        }
    }

    public var rendered: String {
        "[" + issues.map { "\($0.field): \($0.message)" }.joined(separator: "; ") + "]"
    }

    public func throwIfAny() throws(ValidationErrors) {
        if !isEmpty { throw self }
    }
}

/// Anything a request carries that has rules beyond its JSON shape.
public protocol Validatable {
    /// Adds every broken rule to `errors`; `path` is the field path of `self` ("" at the top).
    func validate(into errors: inout ValidationErrors, path: String)
}

extension Validatable {
    public func validated() throws(ValidationErrors) -> Self {
        var errors = ValidationErrors()
        validate(into: &errors, path: "")
        try errors.throwIfAny()
        return self
    }
}

/// Joins a parent path and a field name: `join("vectors", "size") == "vectors.size"`.
public func fieldPath(_ parent: String, _ field: String) -> String {
    parent.isEmpty ? field : "\(parent).\(field)"
}

/// Names of collections, aliases and vectors end up as file names; these rules keep them safe on
/// every file system (Qdrant's list of characters, plus `.` and `..`).
public enum NameRules {
    public static let collectionNameBytesMax = 255
    public static let vectorNameBytesMax = 200
    static let forbiddenCharacters: [Character] = ["<", ">", ":", "\"", "/", "\\", "|", "?", "*", "\0", "\u{1F}"]

    /// The problem with `name` as a collection or alias name, or nil when it is fine.
    public static func collectionNameProblem(_ name: String, kind: String = "collection name") -> String? {
        let length = name.utf8.count
        if length < 1 || length > collectionNameBytesMax {
            return "length of \(kind) must be from 1 to \(collectionNameBytesMax) bytes, got \(length)"
        }
        if let c = forbiddenCharacters.first(where: { name.contains($0) }) {
            return "\(kind) cannot contain \"\(c.unicodeScalars.first!.escaped(asASCII: true))\" char"
        }
        if name == "." || name == ".." {
            return "\(kind) cannot be \"\(name)\""
        }
        return nil
    }

    /// The problem with `name` where an existing collection is addressed (every route but
    /// creation): Qdrant's basic rules, 1 to 255 characters without `/` or NUL, so that
    /// collections made under older rules stay reachable.
    public static func addressedCollectionNameProblem(_ name: String) -> String? {
        let length = name.count
        if length < 1 || length > collectionNameBytesMax {
            return "value \(JSONWriter.string(.string(name))) invalid, must be from 1 to \(collectionNameBytesMax) characters"
        }
        if let c = name.first(where: { $0 == "/" || $0 == "\0" }) {
            return "collection name cannot contain \"\(c.unicodeScalars.first!.escaped(asASCII: true))\" char"
        }
        return nil
    }

    public static func vectorNameProblem(_ name: String) -> String? {
        if name.utf8.count > vectorNameBytesMax {
            return "vector name must be at most \(vectorNameBytesMax) bytes long"
        }
        if let c = forbiddenCharacters.first(where: { name.contains($0) }) {
            return "vector name cannot contain \"\(c.unicodeScalars.first!.escaped(asASCII: true))\" char"
        }
        return nil
    }
}
