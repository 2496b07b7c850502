import GRPCCore
import QuiverJSON
import QuiverModel
import QuiverService
import SwiftProtobuf
import Testing
@testable import QuiverGRPCAPI

/// The conversions between `qdrant.*` messages and the REST bodies / model types they stand for.
struct ConversionTests {
    @Test func deprecatedVectorFormsReadAsTheFormsTheyStandFor() throws {
        var sparse = Qdrant_Vector()
        sparse.data = [0.5, 1.5]
        sparse.indices = Qdrant_SparseIndices.with { $0.data = [3, 7] }
        #expect(Inbound.json(sparse) == ["indices": [3, 7], "values": [0.5, 1.5]])

        var multi = Qdrant_Vector()
        multi.data = [1, 2, 3, 4, 5, 6]
        multi.vectorsCount = 3
        #expect(Inbound.json(multi) == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])

        var dense = Qdrant_Vector()
        dense.data = [0.25, -1]
        #expect(Inbound.json(dense) == [0.25, -1.0])

        var modern = Qdrant_Vector()
        modern.data = [9]  // ignored once the oneof is set, as Qdrant reads it
        modern.multiDense = Qdrant_MultiDenseVector.with { $0.vectors = [Qdrant_DenseVector.with { $0.data = [1, 2] }] }
        #expect(Inbound.json(modern) == [[1.0, 2.0]])
    }

    @Test func aPointReadsAsTheModelReadsTheRESTBody() throws {
        let point = Qdrant_PointStruct.with {
            $0.id = Qdrant_PointId.with { $0.uuid = "936DA01F-9ABD-4D9D-80C7-02AF85C822A8" }
            $0.vectors = Qdrant_Vectors.with {
                $0.vectors = Qdrant_NamedVectors.with {
                    $0.vectors = ["a": Qdrant_Vector.with { $0.dense = Qdrant_DenseVector.with { $0.data = [1, 2] } },
                                  "s": Qdrant_Vector.with { $0.sparse = Qdrant_SparseVector.with { $0.indices = [4]; $0.values = [0.5] } }]
                }
            }
            $0.payload = ["k": Qdrant_Value.with { $0.listValue = Qdrant_ListValue.with { $0.values = [Qdrant_Value.with { $0.integerValue = -3 }] } }]
        }
        let update = try PointsJSON.upsert(Inbound.upsert(points: [point], shardKey: nil, updateFilter: nil, mode: .insertOnly))
        let viaREST = try PointsJSON.upsert([
            "points": [["id": "936da01f-9abd-4d9d-80c7-02af85c822a8", "vector": ["a": [1.0, 2.0], "s": ["indices": [4], "values": [0.5]]],
                        "payload": ["k": [-3]]]],
            "update_mode": "insert_only",
        ])
        #expect(update == viaREST)
    }

    @Test func timestampsBecomeDatetimesTheParsersRead() {
        for (seconds, nanos) in [(Int64(0), Int32(0)), (1_700_000_000, 123_456_789), (-1, 500_000_000), (253_402_300_799, 1000)] {
            let timestamp = Google_Protobuf_Timestamp.with { $0.seconds = seconds; $0.nanos = nanos }
            guard case .string(let text) = Inbound.datetime(timestamp) else {
                Issue.record("not a string")
                continue
            }
            #expect(Datetime.parse(text) == seconds * 1_000_000 + Int64(nanos / 1000), "\(text)")
            let back = Outbound.timestamp(text)
            #expect(back?.seconds == seconds && back?.nanos == nanos / 1000 * 1000, "\(text)")
        }
    }

    @Test func payloadValuesSurviveTheTripThroughProtobuf() {
        let payload: JSONValue = [
            "null": .null, "bool": true, "int": -7, "big": .int(1 << 62), "double": 0.1, "text": "é",
            "list": [1, "two", [3.5]], "object": ["nested": ["deeper": false]],
        ]
        guard case .object(let object) = payload else { return }
        #expect(Inbound.json(Outbound.fields(object)) == payload)
        // Past Int64, an unsigned integer can only travel as a double.
        #expect(Inbound.json(Outbound.value(.uint(UInt64.max))) == .double(Double(UInt64.max)))
    }

    @Test func filtersReadAsTheirRESTForms() throws {
        func field(_ build: (inout Qdrant_FieldCondition) -> Void) -> Qdrant_Condition {
            Qdrant_Condition.with { $0.field = Qdrant_FieldCondition.with { $0.key = "a.b[]"; build(&$0) } }
        }
        let conditions = [
            field { $0.match = Qdrant_Match.with { $0.exceptKeywords = Qdrant_RepeatedStrings.with { $0.strings = ["x"] } } },
            field { $0.valuesCount = Qdrant_ValuesCount.with { $0.gte = 2 } },
            field { $0.isEmpty = false },
            field { $0.datetimeRange = Qdrant_DatetimeRange.with { $0.lt = Google_Protobuf_Timestamp.with { $0.seconds = 86400 } } },
            Qdrant_Condition.with { $0.hasID_p = Qdrant_HasIdCondition.with { $0.hasID_p = [Qdrant_PointId.with { $0.num = 7 }] } },
        ]
        let filter = Qdrant_Filter.with {
            $0.must = conditions
            $0.minShould = Qdrant_MinShould.with { $0.conditions = conditions; $0.minCount = 1 }
        }
        let rest: JSONValue = [
            ["key": "a.b[]", "match": ["except": ["x"]]], ["key": "a.b[]", "values_count": ["gte": 2]], ["key": "a.b[]", "is_empty": false],
            ["key": "a.b[]", "range": ["lt": "1970-01-02T00:00:00Z"]], ["has_id": [7]],
        ]
        let read = try PointsJSON.filter(Inbound.json(filter), "filter")
        let expected = try PointsJSON.filter(["must": rest, "min_should": ["conditions": rest, "min_count": 1]], "filter")
        #expect(read == expected)
        #expect(read != nil)
    }

    @Test(arguments: [
        (ServiceError.storage(.notFound("x")), RPCError.Code.notFound),
        (.storage(.alreadyExists("x")), .alreadyExists),
        (.storage(.badInput("x")), .invalidArgument),
        (.storage(.badRequest("x")), .invalidArgument),
        (.storage(.timeout("x")), .deadlineExceeded),
        (.storage(.unavailable("x")), .unavailable),
        (.storage(.forbidden("x")), .permissionDenied),
        (.storage(.serviceError("x")), .internalError),
        (.storage(.standaloneMode), .unimplemented),
        (.storage(.rateLimited("x", retryAfter: 3)), .resourceExhausted),
        (.format("x", .body), .invalidArgument),
    ])
    func errorsGetQdrantsStatusCodes(error: ServiceError, code: RPCError.Code) {
        #expect(error.rpcError.code == code)
    }

    @Test func aRateLimitSaysWhenToRetry() {
        let error = ServiceError.storage(.rateLimited("too many", retryAfter: 3)).rpcError
        #expect(Array(error.metadata[stringValues: "retry-after"]) == ["3"])
        #expect(error.message == "Rate limiting exceeded: too many")
    }
}
