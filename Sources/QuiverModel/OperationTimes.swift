public import Foundation

/// Count and durations of an operation, as Qdrant's `OperationDurationStatistics` reports them.
public struct OperationTimes: Sendable, Equatable {
    public var count = 0
    public var failures = 0
    public var totalMicros: Int64 = 0
    public var minMicros: Int64?
    public var maxMicros: Int64?
    public var last: Date?

    public init() {}

    public mutating func record(micros: Int64, success: Bool, at date: Date) {
        count += 1
        if !success { failures += 1 }
        totalMicros += micros
        if success {
            minMicros = min(minMicros ?? micros, micros)
            maxMicros = max(maxMicros ?? micros, micros)
        }
        last = date
    }
}
