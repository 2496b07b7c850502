public import QuiverJSON
public import QuiverModel

/// Binary form of `UpdateOperation` in the WAL (little-endian):
///
/// | field | encoding |
/// |---|---|
/// | kind | u8: 1 upsert, 2 delete |
/// | count | u32 |
/// | id (each) | u8 tag (0 number, 1 uuid) + u64, or + 2×u64 |
/// | upsert only, per point after its id | u16 vector count, then per vector: u16 name length, name UTF-8, u32 dimension, dimension × f32; then u32 payload length (0xFFFFFFFF = none) and payload JSON |
enum OperationCodec {
    static func encode(_ operation: UpdateOperation) -> [UInt8] {
        var out: [UInt8] = []
        switch operation {
        case .upsert(let points):
            out.append(1)
            put(UInt32(points.count), &out)
            for point in points {
                putID(point.id, &out)
                put(UInt16(point.vectors.count), &out)
                for name in point.vectors.keys.sorted() {
                    let vector = point.vectors[name]!
                    put(UInt16(name.utf8.count), &out)
                    out += name.utf8
                    put(UInt32(vector.count), &out)
                    vector.withUnsafeBytes { out.append(contentsOf: $0) }
                }
                if let payload = point.payload {
                    let json = JSONWriter.write(.object(payload))
                    put(UInt32(json.count), &out)
                    out += json
                } else {
                    put(UInt32.max, &out)
                }
            }
        case .delete(let ids):
            out.append(2)
            put(UInt32(ids.count), &out)
            for id in ids { putID(id, &out) }
        }
        return out
    }

    struct DecodeError: Error {
        let reason: String
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> UpdateOperation {
        var reader = Reader(bytes: bytes)
        let kind = try reader.u8()
        let count = Int(try reader.u32())
        switch kind {
        case 1:
            var points: [PointStruct] = []
            points.reserveCapacity(count)
            for _ in 0..<count {
                let id = try reader.id()
                var vectors: [String: [Float]] = [:]
                for _ in 0..<Int(try reader.u16()) {
                    let name = try reader.string(Int(try reader.u16()))
                    vectors[name] = try reader.floats(Int(try reader.u32()))
                }
                let payloadLength = try reader.u32()
                var payload: JSONObject?
                if payloadLength != UInt32.max {
                    let raw = try reader.bytes(Int(payloadLength))
                    guard case .object(let object)? = try? JSONParser.parse(raw) else {
                        throw DecodeError(reason: "payload of point \(id) is not a JSON object")
                    }
                    payload = object
                }
                points.append(PointStruct(id: id, vectors: vectors, payload: payload))
            }
            return .upsert(points)
        case 2:
            var ids: [PointID] = []
            for _ in 0..<count { ids.append(try reader.id()) }
            return .delete(ids)
        default:
            throw DecodeError(reason: "unknown operation kind \(kind)")
        }
    }

    static func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func putID(_ id: PointID, _ out: inout [UInt8]) {
        switch id {
        case .number(let n):
            out.append(0)
            put(n, &out)
        case .uuid(let high, let low):
            out.append(1)
            put(high, &out)
            put(low, &out)
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func need(_ n: Int) throws(DecodeError) {
            guard n >= 0, offset + n <= bytes.count else { throw DecodeError(reason: "record ends early at byte \(offset)") }
        }

        mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws(DecodeError) -> T {
            try need(MemoryLayout<T>.size)
            var value: T = 0
            for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
            offset += MemoryLayout<T>.size
            return value
        }

        mutating func u8() throws(DecodeError) -> UInt8 { try integer(UInt8.self) }
        mutating func u16() throws(DecodeError) -> UInt16 { try integer(UInt16.self) }
        mutating func u32() throws(DecodeError) -> UInt32 { try integer(UInt32.self) }
        mutating func u64() throws(DecodeError) -> UInt64 { try integer(UInt64.self) }

        mutating func bytes(_ n: Int) throws(DecodeError) -> ArraySlice<UInt8> {
            try need(n)
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }

        mutating func string(_ n: Int) throws(DecodeError) -> String {
            guard let s = String(validating: try bytes(n), as: UTF8.self) else { throw DecodeError(reason: "name is not UTF-8") }
            return s
        }

        mutating func floats(_ n: Int) throws(DecodeError) -> [Float] {
            let raw = try bytes(n * 4)
            return raw.withUnsafeBytes { buffer in
                (0..<n).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
        }

        mutating func id() throws(DecodeError) -> PointID {
            switch try u8() {
            case 0: return .number(try u64())
            case 1: return .uuid(try u64(), try u64())
            case let tag: throw DecodeError(reason: "unknown id tag \(tag)")
            }
        }
    }
}
