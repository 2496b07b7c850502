import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
@testable import Shard
import Testing

/// The write segment of vectors stored on disk keeps them in file-backed scratch memory, and
/// serves and persists them exactly as arrays would.
@Suite struct MappedColumnTests {
    /// "a" (float32, Dot) and "h" (float16, Euclid) on disk, "r" (uint8, Dot) in memory.
    static let collection: CollectionConfig = {
        var a = VectorParams(size: 4, distance: .dot)
        a.onDisk = true
        var h = VectorParams(size: 3, distance: .euclid)
        h.onDisk = true
        h.datatype = .float16
        var r = VectorParams(size: 2, distance: .dot)
        r.datatype = .uint8
        return config(.named(["a": a, "h": h, "r": r]))
    }()

    static func point(_ i: Int) -> PointStruct {
        let x = Float(i)
        return PointStruct(id: .number(UInt64(i)), vectors: ["a": [x, 1, -x, 0.5], "h": [x / 4, 2, 0.25], "r": [Float(i % 200), 3]],
                           payload: JSONObject([("i", .int(Int64(i)))]))
    }

    func records(_ shard: LocalShard, _ ids: Range<Int>) async -> [PointRecord] {
        await shard.retrieve(ids.map { .number(UInt64($0)) }, withPayload: .all, withVector: .all)
    }

    @Test func onDiskVectorsOfTheWriteSegmentAreFileBackedAndServedAsStored() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection)
        for start in stride(from: 0, to: 3000, by: 500) {
            _ = try await shard.update(.upsert((start..<(start + 500)).map(Self.point)), wait: true)
        }
        let segment = await shard.segments.entries[0].appendable!
        #expect(segment.vectors.mapValues { if case .mapped(let c) = $0 { c.memory.isFileBacked } else { false } } == ["a": true, "h": true, "r": false])
        #expect(segment.residentVectorBytes == 3000 * 2, "only the in-memory uint8 vector")
        #expect(try PosixDisk().listDirectory(dir.path).allSatisfy { !$0.hasPrefix(".quiver-scratch") })
        let expected = (0..<3000).map { i in
            var p = Self.point(i)
            p.vectors["h"] = p.vectors["h"]!.map { Float(Float16($0)) }
            return PointRecord(id: p.id, payload: p.payload, vectors: p.vectors)
        }
        #expect(await records(shard, 0..<3000) == expected)
        let hits = await shard.search([1, 0, 0, 0], using: "a", distance: .dot, filter: nil, limit: 3, threshold: nil,
                                      withPayload: .none, withVector: .none)
        #expect(hits.map(\.id) == [.number(2999), .number(2998), .number(2997)])
        #expect(hits.first?.score == 2999)
        // Vectors changed in place, and a point's vector removed.
        _ = try await shard.update(.updateVectors([PointStruct(id: .number(5), vectors: ["a": [9, 9, 9, 9]], payload: nil)]), wait: true)
        _ = try await shard.update(.deleteVectors([.number(6)], names: ["h"]), wait: true)
        var changed = expected
        changed[5].vectors!["a"] = [9, 9, 9, 9]
        changed[6].vectors!["h"] = nil
        #expect(await records(shard, 0..<3000) == changed)

        // A copy taken before a change (as an optimization's input is) keeps what it saw.
        let before = await shard.segments.entries[0].appendable!
        _ = try await shard.update(.upsert([PointStruct(id: .number(7), vectors: ["a": [0, 0, 0, 1]], payload: JSONObject([("j", .int(1))]))]), wait: true)
        #expect(before.record(.number(7), withPayload: .none, withVector: .named(["a"]))?.vectors?["a"] == [7, 1, -7, 0.5])
        changed[7] = PointRecord(id: .number(7), payload: JSONObject([("j", .int(1))]), vectors: ["a": [0, 0, 0, 1]])

        // Persisted and opened again: the vectors are read into scratch memory again.
        try await shard.persist()
        await shard.close()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection)
        #expect(await records(reopened, 0..<3000) == changed)
        let loaded = await reopened.segments.entries[0].appendable!
        #expect(loaded.residentVectorBytes == 3000 * 2)

        // Sealed into an immutable segment (from the scratch memory), every vector carries over.
        await reopened.triggerOptimizers()
        #expect(try await reopened.optimize(thresholds(sealBytes: 100)))
        #expect(await reopened.segments.entries.allSatisfy { !$0.isAppendable })
        #expect(await records(reopened, 0..<3000) == changed)
    }

    @Test func aVacuumedWriteSegmentKeepsItsVectorsFileBacked() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection)
        _ = try await shard.update(.upsert((0..<1000).map(Self.point)), wait: true)
        _ = try await shard.update(.delete((0..<600).map { .number(UInt64($0)) }), wait: true)
        let t = thresholds(storage: LocalShard.storage(for: Self.collection))
        #expect(await shard.plannedOptimization(t)?.optimizer == "vacuum")
        #expect(try await shard.optimize(t))
        let segment = await shard.segments.entries[0].appendable!
        #expect(segment.liveCount == 400 && segment.residentVectorBytes == 400 * 2)
        #expect(await records(shard, 600..<1000).map(\.vectors?["a"]) == (600..<1000).map { Self.point($0).vectors["a"] })
    }

    @Test func aVectorAddedOnDiskIsFileBackedInTheWriteSegmentAlready() async throws {
        let dir = TempDir()
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: Self.collection)
        _ = try await shard.update(.upsert((0..<10).map(Self.point)), wait: true)
        var added = VectorParams(size: 5, distance: .dot)
        added.onDisk = true
        guard case .named(var vectors) = Self.collection.params.vectors else { Issue.record("named vectors expected"); return }
        vectors["n"] = added
        var config = Self.collection
        config.params.vectors = .named(vectors)
        try await shard.setVectors(config)
        let segment = await shard.segments.entries[0].appendable!
        #expect(segment.vectors["n"]?.isFileBacked == true)
        _ = try await shard.update(.updateVectors([PointStruct(id: .number(3), vectors: ["n": [1, 2, 3, 4, 5]], payload: nil)]), wait: true)
        #expect(await shard.retrieve([.number(3)], withPayload: .none, withVector: .named(["n"])).first?.vectors?["n"] == [1, 2, 3, 4, 5])
    }

    @Test func payloadsStoredOnDiskAreFileBackedInTheWriteSegmentAndServedAsStored() async throws {
        let dir = TempDir()
        var collection = Self.collection
        collection.params.onDiskPayload = true
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: collection)
        _ = try await shard.update(.upsert((0..<1000).map(Self.point)), wait: true)
        #expect(await shard.segments.entries[0].appendable!.payloads.isFileBacked)
        func payloads(_ shard: LocalShard) async -> [JSONObject?] { await records(shard, 0..<1000).map(\.payload) }
        var expected: [JSONObject?] = (0..<1000).map { Self.point($0).payload }
        #expect(await payloads(shard) == expected)

        // A copy taken before a change keeps what it saw.
        let before = await shard.segments.entries[0].appendable!
        let bytesBefore = before.payloads.scratchBytes
        _ = try await shard.update(.setPayload([.number(1), .number(2)], payload: JSONObject([("s", .string("x"))]), key: nil), wait: true)
        _ = try await shard.update(.overwritePayload([.number(3)], payload: JSONObject([("o", .bool(true))])), wait: true)
        _ = try await shard.update(.clearPayload([.number(4)]), wait: true)
        _ = try await shard.update(.deletePayload([.number(5)], keys: ["i"]), wait: true)
        expected[1] = JSONObject([("i", .int(1)), ("s", .string("x"))])
        expected[2] = JSONObject([("i", .int(2)), ("s", .string("x"))])
        expected[3] = JSONObject([("o", .bool(true))])
        expected[4] = JSONObject()
        expected[5] = JSONObject()
        #expect(await payloads(shard) == expected)
        #expect(before.record(.number(3), withPayload: .all, withVector: .none)?.payload == Self.point(3).payload)
        #expect(before.payloads.scratchBytes == bytesBefore, "the changes went to a copy of the bytes")
        let hits = await shard.scroll(from: nil, limit: 10, filter: Filter(must: [.field(FieldCondition(key: "s", match: .keyword("x")))]),
                                      withPayload: .all, withVector: .none)
        #expect(hits.map(\.id) == [.number(1), .number(2)])

        // Persisted and opened again, then sealed: the payloads carry over each time.
        try await shard.persist()
        await shard.close()
        let reopened = try LocalShard(path: dir.path, disk: PosixDisk(), config: collection)
        #expect(await reopened.segments.entries[0].appendable!.payloads.isFileBacked)
        #expect(await payloads(reopened) == expected)
        await reopened.triggerOptimizers()
        #expect(try await reopened.optimize(thresholds(sealBytes: 100, storage: LocalShard.storage(for: collection))))
        #expect(await reopened.segments.entries.allSatisfy { !$0.isAppendable })
        #expect(await payloads(reopened) == expected)
    }

    @Test func aPayloadColumnInScratchMemoryReadsAsArraysWould() {
        var column = PayloadColumn(in: ScratchMemory(fileIn: NSTemporaryDirectory()))
        var arrays = PayloadColumn()
        let values: [[UInt8]?] = [Array("{\"a\":1}".utf8), nil, [], Array(repeating: UInt8(ascii: "x"), count: 3 << 20)]
        for value in values {
            column.append(value)
            arrays.append(value)
        }
        let copy = column
        column[0] = nil
        column[1] = Array("{}".utf8)
        arrays[0] = nil
        arrays[1] = Array("{}".utf8)
        #expect(column.isFileBacked && !arrays.isFileBacked)
        #expect((0..<4).map { column[$0] } == (0..<4).map { arrays[$0] })
        #expect((0..<4).map { copy[$0] } == values, "the copy was not changed")
        #expect(copy.scratchBytes == 7 + (3 << 20), "nor were its bytes")
        #expect(column.scratchBytes == 7 + (3 << 20) + 2, "a replaced payload leaves its bytes; none is stored for nil")
        column[1] = Array("{}".utf8)
        #expect(column.scratchBytes == 7 + (3 << 20) + 2, "an unchanged payload is not stored again")
    }
}
