/// Read `consistency`: how many replicas answer, and which points survive their disagreement.
public enum ReadConsistency: Sendable, Equatable {
    /// `n` replicas (1 by default), keeping what all of them return.
    case factor(Int)
    /// Every replica, keeping what a majority returns.
    case majority
    /// Half the replicas plus one, keeping what all of them return.
    case quorum
    /// Every replica, keeping what all return.
    case all

    public static let `default` = ReadConsistency.factor(1)

    /// The query parameter's value: `all`, `majority`, `quorum` or a positive integer.
    public init?(parameter: String) {
        switch parameter {
        case "all": self = .all
        case "majority": self = .majority
        case "quorum": self = .quorum
        default:
            guard let n = Int(parameter), n >= 1 else { return nil }
            self = .factor(n)
        }
    }
}
