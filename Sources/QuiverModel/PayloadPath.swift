public import QuiverJSON

/// Payload keys with paths: `a.b` is key `b` of the object at `a`; `a[]` is every element of the
/// array at `a`; `a[2]` is its third element.
public enum PayloadPath {
    enum Step: Equatable {
        case key(String)
        case every
        case index(Int)
    }

    static func steps(_ path: String) -> [Step] {
        var result: [Step] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            var name = Substring(part)
            var suffixes: [Step] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
                let inside = name[name.index(after: open)..<name.index(before: name.endIndex)]
                if inside.isEmpty {
                    suffixes.insert(.every, at: 0)
                } else if let i = Int(inside) {
                    suffixes.insert(.index(i), at: 0)
                } else {
                    break
                }
                name = name[..<open]
            }
            result.append(.key(String(name)))
            result += suffixes
        }
        return result
    }

    /// Merges `payload` into the object at `key`, or into the top level when `key` is nil, as
    /// Qdrant's `set_payload` does: a `null` value removes its key instead of storing it. Along the
    /// path, a value that is not an object is replaced by `{}` before a key step, and one that is
    /// not an array by `[]` before an index or `[]` step (which then reaches nothing); an index past
    /// the end reaches nothing, and `[]` reaches every element.
    public static func set(_ payload: JSONObject, into target: inout JSONObject, at key: String?) {
        guard let key else {
            merge(payload, into: &target)
            return
        }
        var value = JSONValue.object(target)
        set(payload, into: &value, steps(key)[...])
        target = value.objectValue ?? target
    }

    private static func merge(_ payload: JSONObject, into object: inout JSONObject) {
        for (k, v) in payload { object[k] = v.isNull ? nil : v }
    }

    private static func set(_ payload: JSONObject, into value: inout JSONValue, _ steps: ArraySlice<Step>) {
        guard let step = steps.first else {
            var object = value.objectValue ?? JSONObject()
            merge(payload, into: &object)
            value = .object(object)
            return
        }
        switch step {
        case .key(let name):
            var object = value.objectValue ?? JSONObject()
            var child = object[name] ?? .null
            set(payload, into: &child, steps.dropFirst())
            object[name] = child
            value = .object(object)
        case .every:
            guard case .array(var elements) = value else { value = .array([]); return }
            for i in elements.indices { set(payload, into: &elements[i], steps.dropFirst()) }
            value = .array(elements)
        case .index(let i):
            guard case .array(var elements) = value else { value = .array([]); return }
            guard elements.indices.contains(i) else { return }
            set(payload, into: &elements[i], steps.dropFirst())
            value = .array(elements)
        }
    }

    /// Removes the value at `path`; missing parts are ignored, and so is a path that ends at an
    /// array index. A path ending in `[]` empties the array.
    public static func delete(_ path: String, from target: inout JSONObject) {
        var value = JSONValue.object(target)
        remove(&value, steps(path)[...])
        target = value.objectValue ?? target
    }

    private static func remove(_ value: inout JSONValue, _ steps: ArraySlice<Step>) {
        guard let step = steps.first else { return }
        let last = steps.count == 1
        switch step {
        case .key(let name):
            guard var object = value.objectValue, var child = object[name] else { return }
            if last {
                object[name] = nil
            } else {
                remove(&child, steps.dropFirst())
                object[name] = child
            }
            value = .object(object)
        case .every:
            guard case .array(var elements) = value else { return }
            if last {
                elements = []
            } else {
                for i in elements.indices { remove(&elements[i], steps.dropFirst()) }
            }
            value = .array(elements)
        case .index(let i):
            // As in Qdrant, a path ending at an array index removes nothing: deleting by index
            // would not be idempotent, and a replayed operation must give the same payload.
            guard !last, case .array(var elements) = value, elements.indices.contains(i) else { return }
            remove(&elements[i], steps.dropFirst())
            value = .array(elements)
        }
    }
}
