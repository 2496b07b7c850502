import DiskIO
public import QuiverJSON
public import QuiverModel

/// Binary form of `UpdateOperation` in the WAL (little-endian):
///
/// | field | encoding |
/// |---|---|
/// | kind | u8: 1 upsert, 2 delete, 3 update vectors, 4 delete vectors, 5 set payload, 6 overwrite payload, 7 delete payload keys, 8 clear payload, 9 upsert and 10 update vectors with sparse vectors, 11 upsert and 12 update vectors with multivectors |
/// | points (1, 3) | u32 count, then per point: id, u16 vector count, per vector (u16 name length, name UTF-8, u32 dimension, dimension × f32), payload |
/// | points (9, 10) | as (1, 3), with after each point's dense vectors: u16 sparse count, per vector (u16 name length, name UTF-8, u32 n, n × u32 indices, n × f32 values) |
/// | points (11, 12) | as (9, 10), with after each point's sparse vectors: u16 multivector count, per vector (u16 name length, name UTF-8, u32 dimension, u32 count, count × dimension f32) |
/// | ids (2, 4–8) | u32 count, then ids |
/// | id | u8 tag (0 number, 1 uuid) + u64, or + 2×u64 |
/// | payload | u32 length (0xFFFFFFFF = none) + JSON object |
/// | strings (4: vector names, 7: keys) | u16 count, then u16 length + UTF-8 each |
/// | key (5) | u32 length (0xFFFFFFFF = none) + UTF-8 |
///
/// A record's first byte tells its form: below 0x80 it is the operation's kind (a record without
/// a clock tag); 0x80 starts a record with the update's clock tag: u64 peer, u32 clock, u64 tick,
/// u64 token, u8 force, then the operation as above (``encode(_:clock:)``). 0x81–0xFF are kept for
/// later record forms, which this version refuses by name rather than misreading.
public enum OperationCodec {
    static let clockedRecord: UInt8 = 0x80

    /// A WAL record: the operation, after its clock tag when it has one.
    public static func encode(_ operation: UpdateOperation, clock: ClockTag?) -> [UInt8] {
        guard let clock else { return encode(operation) }
        var out: [UInt8] = [clockedRecord]
        put(clock.peerID, &out)
        put(clock.clockID, &out)
        put(clock.tick, &out)
        put(clock.token, &out)
        out.append(clock.force ? 1 : 0)
        return out + encode(operation)
    }

    /// A WAL record's operation and clock tag (nil for records without one).
    public static func decodeRecord(_ bytes: [UInt8]) throws(DecodeError) -> (UpdateOperation, ClockTag?) {
        guard let form = bytes.first, form >= clockedRecord else { return (try decode(bytes), nil) }
        guard form == clockedRecord else {
            throw DecodeError(reason: "record form 0x\(String(form, radix: 16)) is newer than this version of Quiver reads; open the storage with the version that wrote it")
        }
        var reader = Reader(bytes: bytes)
        _ = try reader.u8()
        let tag = ClockTag(peerID: try reader.u64(), clockID: try reader.u32(), tick: try reader.u64(), token: try reader.u64(),
                           force: try reader.u8() != 0)
        return (try decode(Array(bytes[reader.offset...])), tag)
    }

    public static func encode(_ operation: UpdateOperation) -> [UInt8] {
        var out: [UInt8] = []
        switch operation {
        case .upsert(let points):
            let (sparse, multi) = (points.contains { !$0.sparse.isEmpty }, points.contains { !$0.multi.isEmpty })
            out.append(multi ? 11 : sparse ? 9 : 1)
            putPoints(points, sparse: sparse || multi, multi: multi, &out)
        case .delete(let ids):
            out.append(2)
            putIDs(ids, &out)
        case .updateVectors(let points):
            let (sparse, multi) = (points.contains { !$0.sparse.isEmpty }, points.contains { !$0.multi.isEmpty })
            out.append(multi ? 12 : sparse ? 10 : 3)
            putPoints(points, sparse: sparse || multi, multi: multi, &out)
        case .deleteVectors(let ids, let names):
            out.append(4)
            putIDs(ids, &out)
            putStrings(names, &out)
        case .setPayload(let ids, let payload, let key):
            out.append(5)
            putIDs(ids, &out)
            putPayload(payload, &out)
            if let key {
                put(UInt32(key.utf8.count), &out)
                out += key.utf8
            } else {
                put(UInt32.max, &out)
            }
        case .overwritePayload(let ids, let payload):
            out.append(6)
            putIDs(ids, &out)
            putPayload(payload, &out)
        case .deletePayload(let ids, let keys):
            out.append(7)
            putIDs(ids, &out)
            putStrings(keys, &out)
        case .clearPayload(let ids):
            out.append(8)
            putIDs(ids, &out)
        }
        return out
    }

    public struct DecodeError: Error {
        public let reason: String
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> UpdateOperation {
        var reader = Reader(bytes: bytes)
        let kind = try reader.u8()
        let operation: UpdateOperation
        switch kind {
        case 1: operation = .upsert(try reader.points())
        case 2: operation = .delete(try reader.ids())
        case 3: operation = .updateVectors(try reader.points())
        case 4: operation = .deleteVectors(try reader.ids(), names: try reader.strings())
        case 5:
            let ids = try reader.ids()
            let payload = try reader.payload() ?? JSONObject()
            let keyLength = try reader.u32()
            let key = keyLength == UInt32.max ? nil : try reader.string(Int(keyLength))
            operation = .setPayload(ids, payload: payload, key: key)
        case 6: operation = .overwritePayload(try reader.ids(), payload: try reader.payload() ?? JSONObject())
        case 7: operation = .deletePayload(try reader.ids(), keys: try reader.strings())
        case 8: operation = .clearPayload(try reader.ids())
        case 9: operation = .upsert(try reader.points(sparse: true))
        case 10: operation = .updateVectors(try reader.points(sparse: true))
        case 11: operation = .upsert(try reader.points(sparse: true, multi: true))
        case 12: operation = .updateVectors(try reader.points(sparse: true, multi: true))
        default: throw DecodeError(reason: "unknown operation kind \(kind)")
        }
        guard reader.offset == bytes.count else { throw DecodeError(reason: "\(bytes.count - reader.offset) bytes after the operation") }
        return operation
    }

    static func putPoints(_ points: [PointStruct], sparse: Bool, multi: Bool = false, _ out: inout [UInt8]) {
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
            if sparse {
                put(UInt16(point.sparse.count), &out)
                for name in point.sparse.keys.sorted() {
                    let vector = point.sparse[name]!
                    put(UInt16(name.utf8.count), &out)
                    out += name.utf8
                    put(UInt32(vector.count), &out)
                    for index in vector.indices { put(index, &out) }
                    vector.values.withUnsafeBytes { out.append(contentsOf: $0) }
                }
            }
            if multi {
                put(UInt16(point.multi.count), &out)
                for name in point.multi.keys.sorted() {
                    let vector = point.multi[name]!
                    put(UInt16(name.utf8.count), &out)
                    out += name.utf8
                    put(UInt32(vector.dimension), &out)
                    put(UInt32(vector.count), &out)
                    vector.flat.withUnsafeBytes { out.append(contentsOf: $0) }
                }
            }
            putPayload(point.payload, &out)
        }
    }

    static func putIDs(_ ids: [PointID], _ out: inout [UInt8]) {
        put(UInt32(ids.count), &out)
        for id in ids { putID(id, &out) }
    }

    static func putStrings(_ strings: [String], _ out: inout [UInt8]) {
        put(UInt16(strings.count), &out)
        for string in strings {
            put(UInt16(string.utf8.count), &out)
            out += string.utf8
        }
    }

    static func putPayload(_ payload: JSONObject?, _ out: inout [UInt8]) {
        if let payload {
            let json = JSONWriter.write(.object(payload))
            put(UInt32(json.count), &out)
            out += json
        } else {
            put(UInt32.max, &out)
        }
    }

    static func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        LittleEndian.append(value, to: &out)
    }

    static func putID(_ id: PointID, _ out: inout [UInt8]) {
        let (tag, a, b) = id.storageWords
        out.append(tag)
        put(a, &out)
        if tag == PointID.uuidTag { put(b, &out) }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func need(_ n: Int) throws(DecodeError) {
            guard n >= 0, offset + n <= bytes.count else { throw DecodeError(reason: "record ends early at byte \(offset)") }
        }

        mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws(DecodeError) -> T {
            try need(MemoryLayout<T>.size)
            defer { offset += MemoryLayout<T>.size }
            return LittleEndian.read(T.self, bytes, at: offset)
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

        mutating func ids() throws(DecodeError) -> [PointID] {
            let count = Int(try u32())
            var result: [PointID] = []
            result.reserveCapacity(min(count, 1 << 16))
            for _ in 0..<count { result.append(try id()) }
            return result
        }

        mutating func strings() throws(DecodeError) -> [String] {
            var result: [String] = []
            for _ in 0..<Int(try u16()) { result.append(try string(Int(try u16()))) }
            return result
        }

        mutating func payload() throws(DecodeError) -> JSONObject? {
            let length = try u32()
            guard length != UInt32.max else { return nil }
            let raw = try bytes(Int(length))
            guard case .object(let object)? = try? JSONParser.parse(raw) else {
                throw DecodeError(reason: "payload is not a JSON object")
            }
            return object
        }

        mutating func points(sparse: Bool = false, multi: Bool = false) throws(DecodeError) -> [PointStruct] {
            let count = Int(try u32())
            var points: [PointStruct] = []
            points.reserveCapacity(min(count, 1 << 16))
            for _ in 0..<count {
                let id = try id()
                var vectors: [String: [Float]] = [:]
                for _ in 0..<Int(try u16()) {
                    let name = try string(Int(try u16()))
                    vectors[name] = try floats(Int(try u32()))
                }
                var sparseVectors: [String: SparseVector] = [:]
                if sparse {
                    for _ in 0..<Int(try u16()) {
                        let name = try string(Int(try u16()))
                        let n = Int(try u32())
                        var indices: [UInt32] = []
                        indices.reserveCapacity(min(n, 1 << 16))
                        for _ in 0..<n { indices.append(try u32()) }
                        let values = try floats(n)
                        guard Set(indices).count == n else { throw DecodeError(reason: "a sparse vector repeats an index") }
                        sparseVectors[name] = SparseVector(indices: indices, values: values)
                    }
                }
                var multiVectors: [String: MultiVector] = [:]
                if multi {
                    for _ in 0..<Int(try u16()) {
                        let name = try string(Int(try u16()))
                        let dimension = Int(try u32()), count = Int(try u32())
                        let (elements, overflow) = dimension.multipliedReportingOverflow(by: count)
                        guard dimension > 0, count > 0, !overflow, elements <= MultiVector.maxFlattened else {
                            throw DecodeError(reason: "a multivector that is empty or too large")
                        }
                        multiVectors[name] = MultiVector(dimension: dimension, flat: try floats(elements))
                    }
                }
                points.append(PointStruct(id: id, vectors: vectors, sparse: sparseVectors, multi: multiVectors, payload: try payload()))
            }
            return points
        }

        mutating func id() throws(DecodeError) -> PointID {
            let tag = try u8()
            guard tag == PointID.numberTag || tag == PointID.uuidTag else { throw DecodeError(reason: "unknown id tag \(tag)") }
            let a = try u64()
            return PointID(storageTag: tag, a, tag == PointID.uuidTag ? try u64() : 0)
        }
    }
}
