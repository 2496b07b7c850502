import QuiverJSON
import QuiverModel
@testable import Storage
import Testing

@Suite struct QueryTests {
    func list(_ scored: [(UInt64, Float)]) -> [ScoredPoint] {
        scored.map { ScoredPoint(id: .number($0.0), version: 1, score: $0.1, payload: nil, vectors: nil) }
    }

    @Test func rrfAddsOneOverRankPlusKAndKeepsTiesInTheOrderFirstMet() {
        let a = list([(1, 0.9), (2, 0.8), (3, 0.7)])
        let b = list([(3, 5), (4, 4)])
        let fused = Fusion.rrf(k: nil, weights: nil).fuse([a, b], limit: 10)
        // k = 2: rank r (from 0) adds 1 / (r + 2).
        #expect(fused.map(\.id) == [.number(3), .number(1), .number(2), .number(4)])
        #expect(abs(fused[0].score - (1.0 / 4 + 1.0 / 2)) < 1e-6)
        #expect(fused[1].score == 0.5 && fused[2].score == Float(1.0 / 3) && fused[3].score == Float(1.0 / 3))
        let weighted = Fusion.rrf(k: 60, weights: [3, 0]).fuse([a, b], limit: 2)
        #expect(weighted.map(\.id) == [.number(1), .number(2)])
        #expect(abs(weighted[0].score - 1 / (1.0 / 3 + 59)) < 1e-7)
    }

    @Test func dbsfNormalisesEachListByMeanAndThreeDeviations() {
        let fused = Fusion.dbsf.fuse([list([(1, 3), (2, 1)]), list([(2, 7)]), list([(5, 2), (6, 2)])], limit: 10)
        // List 1: mean 2, sample deviation √2, so 3 ↦ (1 + 3√2) / 6√2. A single score or equal
        // scores are 0.5.
        let top = Float((1 + 3 * 2.0.squareRoot()) / (6 * 2.0.squareRoot()))
        let bottom = Float((-1 + 3 * 2.0.squareRoot()) / (6 * 2.0.squareRoot()))
        let byID = Dictionary(uniqueKeysWithValues: fused.map { ($0.id, $0.score) })
        #expect(abs(byID[.number(1)]! - top) < 1e-6)
        #expect(abs(byID[.number(2)]! - (bottom + 0.5)) < 1e-6)
        #expect(byID[.number(5)] == 0.5 && byID[.number(6)] == 0.5)
        #expect(fused.first?.id == .number(2))
    }

    @Test func queryChecksAreQdrants() throws {
        var leaf = SearchRequest()
        leaf.query = .vector([1, 2])
        var request = SearchRequest()
        request.prefetch = [leaf]
        #expect(throws: StorageError.self) { try Collection.checkQuery(request) }
        request.query = .fusion(.rrf(k: nil, weights: [1, 2]))
        #expect(throws: StorageError.self) { try Collection.checkQuery(request) }
        request.query = .fusion(.rrf(k: nil, weights: [1]))
        try Collection.checkQuery(request)
        request.using = "dense"
        #expect(throws: StorageError.self) { try Collection.checkQuery(request) }
    }

    @Test func prefetchFiltersJoinClauseByClauseAsQdrants() {
        let a = Filter(must: [.hasID([.number(1)])], should: [.hasID([.number(2)])], minShould: .init(conditions: [.hasID([.number(3)])], minCount: 1))
        let b = Filter(should: [.hasID([.number(4)])], mustNot: [.hasID([.number(5)])], minShould: .init(conditions: [.hasID([.number(6)])], minCount: 2))
        let merged = Filter.merged(a, b)!
        #expect(merged.must == a.must && merged.mustNot == b.mustNot)
        // The `should` conditions of both are alternatives of one another.
        #expect(merged.should == [.hasID([.number(2)]), .hasID([.number(4)])])
        #expect(merged.minShould == .init(conditions: [.hasID([.number(3)]), .hasID([.number(6)])], minCount: 2))
        #expect(Filter.merged(nil, b) == b && Filter.merged(a, nil) == a)
    }

    @Test func examplesParseAndScoreAsQdrant() throws {
        let recommend = try PointsJSON.queryRequest(["query": ["recommend": ["positive": [1, [0.5, 0.5]], "negative": [["indices": [2], "values": [1]]],
                                                                            "strategy": "best_score"]]])
        #expect(recommend.query == .recommend(positive: [.point(.number(1)), .vector([0.5, 0.5])],
                                              negative: [.sparse(SparseVector(indices: [2], values: [1]))], strategy: .bestScore))
        let discover = try PointsJSON.discoverRequest(["target": 3, "context": ["positive": 1, "negative": 2], "limit": 4])
        #expect(discover.query == .discover(target: .point(.number(3)), context: [ContextPair(positive: .point(.number(1)), negative: .point(.number(2)))]))
        #expect(try PointsJSON.discoverRequest(["context": [], "limit": 4]).query == .context([]))
        do {
            _ = try PointsJSON.queryRequest(["query": ["recommend": ["positive": []]]])
            Issue.record("no error")
        } catch {
            #expect(error.isValidation)
        }
        #expect(throws: JSONDecodingError.self) { try PointsJSON.recommendRequest(["positive": [1]]) }
        // Qdrant's sigmoid: x / (1 + |x|) mapped to 0…1.
        #expect(Collection.scaledSigmoid(1) == 0.75 && Collection.scaledSigmoid(-3) == 0.125 && Collection.fastSigmoid(-1) == -0.5)
    }

    @Test func prefetchTreesParse() throws {
        let body: JSONValue = [
            "prefetch": [
                ["query": [0.1, 0.2], "using": "d", "limit": 5],
                ["prefetch": ["query": ["indices": [1], "values": [2]], "using": "s"], "query": ["fusion": "dbsf"]],
            ],
            "query": ["rrf": ["k": 10, "weights": [1, 2]]],
            "limit": 3,
        ]
        let request = try PointsJSON.queryRequest(body)
        #expect(request.prefetch.count == 2 && request.prefetch[0].limit == 5 && request.prefetch[0].using == "d")
        #expect(request.prefetch[1].prefetch.first?.query == .sparse(SparseVector(indices: [1], values: [2])))
        #expect(request.prefetch[1].query == .fusion(.dbsf))
        #expect(request.query == .fusion(.rrf(k: 10, weights: [1, 2])))
        #expect(throws: JSONDecodingError.self) { try PointsJSON.queryRequest(["prefetch": ["offset": 3], "query": ["fusion": "rrf"]]) }
        #expect(throws: JSONDecodingError.self) { try PointsJSON.queryRequest(["query": ["fusion": "max"]]) }
    }
}
