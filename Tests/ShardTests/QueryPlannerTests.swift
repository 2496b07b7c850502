import DiskIO
import QuiverJSON
import QuiverModel
import QuiverTesting
@testable import Shard
import Testing

/// Cardinality estimates from payload indexes, and the per-segment plan they lead to.
@Suite struct QueryPlannerTests {
    /// 1,000 points: "c" is one of ten colours (indexed), "n" the point number (not indexed).
    func shard(_ dir: TempDir) async throws -> LocalShard {
        let shard = try LocalShard(path: dir.path, disk: PosixDisk(), config: twoVectors)
        await shard.setPayloadSchema(["c": PayloadFieldSchema(type: .keyword)])
        _ = try await shard.update(.upsert((0..<1000).map {
            PointStruct(id: .number(UInt64($0)), vectors: ["a": [Float($0), 1]],
                        payload: JSONObject([("c", .string("colour\($0 % 10)")), ("n", .int(Int64($0)))]))
        }), wait: false)
        return shard
    }

    func colour(_ i: Int) -> Condition { .field(FieldCondition(key: "c", match: .keyword("colour\(i)"))) }
    let unindexed = Condition.field(FieldCondition(key: "n", range: .number(Bounds(lt: 10))))

    @Test func estimatesCombineIndexedAndUnknownConditions() async throws {
        let dir = TempDir()
        let entry = try await shard(dir).segments.entries[0]
        #expect(entry.cardinality(Filter(must: [colour(1)])) == Cardinality(min: 0, expected: 100, max: 100))
        // Unknown conditions leave the whole range open; with an indexed one the maximum is its count.
        #expect(entry.cardinality(Filter(must: [unindexed])) == Cardinality(min: 0, expected: 500, max: 1000))
        #expect(entry.cardinality(Filter(must: [colour(1), unindexed])) == Cardinality(min: 0, expected: 50, max: 100))
        #expect(entry.cardinality(Filter(should: [colour(1), colour(2)])) == Cardinality(min: 0, expected: 190, max: 200))
        #expect(entry.cardinality(Filter(mustNot: [colour(1)])) == Cardinality(min: 900, expected: 900, max: 1000))
        #expect(entry.cardinality(Filter(must: [.hasID([.number(1), .number(2)])])) == Cardinality(min: 0, expected: 2, max: 2))
    }

    @Test func planFollowsTheThreshold() async throws {
        let dir = TempDir()
        let entry = try await shard(dir).segments.entries[0]
        let rare = Filter(must: [colour(3)])
        // Without a vector index: index candidates when an index applies, else a scan.
        #expect(entry.plan(rare, vectorIndexed: false, exact: false, fullScanThreshold: 10) == .candidates(Array(stride(from: 3, to: 1000, by: 10))))
        #expect(entry.plan(Filter(must: [unindexed]), vectorIndexed: false, exact: false, fullScanThreshold: 10) == .fullScan)
        #expect(entry.plan(nil, vectorIndexed: false, exact: false, fullScanThreshold: 10) == .fullScan)
        // With one: the index for unfiltered and broad searches, candidates for selective ones.
        #expect(entry.plan(nil, vectorIndexed: true, exact: false, fullScanThreshold: 10) == .vectorIndex)
        #expect(entry.plan(rare, vectorIndexed: true, exact: false, fullScanThreshold: 10) == .vectorIndex)
        #expect(entry.plan(rare, vectorIndexed: true, exact: false, fullScanThreshold: 200) != .vectorIndex)
        #expect(entry.plan(Filter(mustNot: [colour(3)]), vectorIndexed: true, exact: false, fullScanThreshold: 200) == .vectorIndex)
        // `exact` never uses the vector index.
        #expect(entry.plan(nil, vectorIndexed: true, exact: true, fullScanThreshold: 10) == .fullScan)
        #expect(entry.plan(rare, vectorIndexed: true, exact: true, fullScanThreshold: 10) != .vectorIndex)
    }
}
