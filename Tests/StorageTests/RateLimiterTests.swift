import QuiverJSON
import QuiverModel
@testable import Storage
import Testing

@Suite struct RateLimiterTests {
    @Test func aBucketStartsFullRefillsPerMinuteAndSaysWhenToRetry() {
        let start = ContinuousClock.now
        var limiter = RateLimiter(.write, perMinute: 60, now: start)
        #expect(limiter.check(60, now: start) == nil)
        limiter.consume(50, now: start)
        #expect(limiter.check(15, now: start) == .rateLimited(
            "Write rate limit exceeded: Operation requires 15 tokens but only 10.0 were available. Retry after 5s", retryAfter: 5))
        // One token a second comes back.
        #expect(limiter.check(15, now: start + .milliseconds(5500)) == nil)
        #expect(limiter.check(61, now: start) == .rateLimited(
            "Write rate limit exceeded, request larger than rate limiter capacity, please try to split your request", retryAfter: nil))
        // Never more than the capacity.
        var read = RateLimiter(.read, perMinute: 6, now: start)
        read.consume(6, now: start)
        #expect(read.check(6, now: start + .seconds(600)) == nil)
        #expect(read.check(7, now: start + .seconds(600)) != nil)
        #expect(RateLimiter.oneDecimal(37.25) == "37.3" && RateLimiter.oneDecimal(0) == "0.0")
    }

    @Test func readsCostConditionsAndIDsAsQdrantCountsThem() throws {
        let filter = try PointsJSON.filter(JSONParser.parse(
            #"{"must":[{"key":"a","match":{"value":1}},{"nested":{"key":"n","filter":{"must":[{"key":"b","match":{"value":2}},{"is_empty":{"key":"c"}}]}}}],"should":[{"has_id":[1,2]}]}"#), "filter")
        #expect(RateCost.conditions(filter) == 4)
        #expect(RateCost.read(.count(filter: filter)) == 5)
        #expect(RateCost.read(.count(filter: nil)) == 1)
        #expect(RateCost.read(.retrieve(ids: [.number(1), .number(2), .number(3)], withPayload: .none, withVector: .none)) == 3)
    }
}
