public import QuiverModel

/// A token bucket for strict mode's `read_rate_limit` and `write_rate_limit`: `perMinute` tokens,
/// refilled continuously at `perMinute / 60` a second, starting full. An operation costs tokens
/// (points it touches, or conditions it evaluates); one that costs more than is left is refused
/// with the time after which it would pass.
struct RateLimiter: Sendable {
    enum Kind: String, Sendable { case read = "Read", write = "Write" }

    let kind: Kind
    let perMinute: Int
    private var tokens: Double
    private var checked: ContinuousClock.Instant

    init(_ kind: Kind, perMinute: Int, now: ContinuousClock.Instant) {
        self.kind = kind
        self.perMinute = perMinute
        tokens = Double(perMinute)
        checked = now
    }

    /// Whether `cost` tokens are there now, with the error to answer when not. Takes nothing.
    mutating func check(_ cost: Int, now: ContinuousClock.Instant) -> StorageError? {
        guard cost <= perMinute else {
            return .rateLimited("\(kind.rawValue) rate limit exceeded, request larger than rate limiter capacity, please try to split your request",
                                retryAfter: nil)
        }
        refill(now)
        guard tokens < Double(cost) else { return nil }
        let wait = (Double(cost) - tokens) / (Double(perMinute) / 60)
        let seconds = Int(wait.rounded(.up))
        return .rateLimited("\(kind.rawValue) rate limit exceeded: Operation requires \(cost) tokens but only \(Self.oneDecimal(tokens)) were available. Retry after \(seconds)s",
                            retryAfter: max(seconds, 1))
    }

    /// Takes `cost` tokens (after ``check(_:now:)`` found them).
    mutating func consume(_ cost: Int, now: ContinuousClock.Instant) {
        refill(now)
        tokens -= Double(cost)
    }

    private mutating func refill(_ now: ContinuousClock.Instant) {
        let seconds = (now - checked).inSeconds
        checked = now
        tokens = min(Double(perMinute), tokens + seconds * Double(perMinute) / 60)
    }

    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// What operations cost against the rate limits (Qdrant's accounting).
enum RateCost {
    /// Conditions of a filter, nested filters counted through.
    static func conditions(_ filter: Filter?) -> Int {
        guard let filter else { return 0 }
        func count(_ conditions: [Condition]?) -> Int {
            (conditions ?? []).reduce(0) { total, condition in
                switch condition {
                case .nested(_, let inner), .filter(let inner): total + Self.conditions(inner)
                default: total + 1
                }
            }
        }
        return count(filter.must) + count(filter.should) + count(filter.mustNot) + count(filter.minShould?.conditions)
    }

    /// A read's cost on each shard it reaches.
    static func read(_ request: ShardRequest) -> Int {
        switch request {
        case .retrieve(let ids, _, _): ids.count
        case .scroll(_, _, let filter, _, _), .scrollOrdered(_, _, let filter, _, _), .count(let filter), .facet(_, let filter):
            1 + conditions(filter)
        case .search(let search): 1 + conditions(search.filter)
        case .vector, .sparseStatistics, .transferTarget, .recoveryPoint, .indexedVectors: 0
        case .owned(let inner, _): read(inner)
        }
    }
}
