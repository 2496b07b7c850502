import CVectorKernels
import Foundation
public import QuiverModel
import Shard

/// Queries by examples: recommend (`average_vector` becomes one query vector; `best_score` and
/// `sum_scores` score every point against each example), discover and context. The service has
/// turned point ids into vectors by now. Scores are Qdrant's: similarities as the engine
/// compares them (Euclid and Manhattan negated), through its sigmoid where Qdrant uses one.
extension Collection {
    /// The examples checked against vector `using`: all dense of its dimension, or all sparse.
    func checkExamples(_ examples: [QueryInput], using: String) throws(StorageError) {
        let dense = config.params.vectors.all[using]
        let sparse = config.params.sparseVectors?[using]
        guard dense != nil || sparse != nil else {
            throw .badInput(using.isEmpty
                ? "Not existing vector name error: the collection has only named vectors (\(config.params.vectors.all.keys.sorted().joined(separator: ", "))); set `using`"
                : "Not existing vector name error: \(using)")
        }
        for example in examples {
            switch example {
            case .vector(let vector):
                guard let dense else { throw .badInput("Conversion between sparse and regular vectors failed") }
                guard vector.count == Int(dense.size) else { throw .badInput("Vector dimension error: expected dim: \(dense.size), got \(vector.count)") }
            case .multi(let vector):
                _ = try multiQuery(vector, using: using)
            case .sparse:
                guard sparse != nil else { throw .badInput("Conversion between sparse and regular vectors failed") }
            default:
                throw .badRequest("an example must be a vector or a point id")
            }
        }
    }

    static func examples(of query: QueryInput) -> [QueryInput] {
        switch query {
        case .recommend(let positive, let negative, _): positive + negative
        case .discover(let target, let context): [target] + context.flatMap { [$0.positive, $0.negative] }
        case .context(let context): context.flatMap { [$0.positive, $0.negative] }
        case .relevanceFeedback(let target, let feedback, _, _, _): [target] + feedback.map(\.example)
        default: []
        }
    }

    /// `average_vector`: the mean of the positives, moved away from the mean of the negatives
    /// (2 × positives − negatives); dimensions a sparse example lacks count as 0.
    func averageQuery(positive: [QueryInput], negative: [QueryInput], using: String) throws(StorageError) -> QueryInput {
        try checkExamples(positive + negative, using: using)
        guard !positive.isEmpty else { throw .badRequest("At least one positive vector ID required with this strategy") }
        if config.params.vectors.all[using]?.multivectorConfig != nil {
            // Every positive row, then every negative row negated (as Qdrant's local mode does).
            func rows(_ example: QueryInput) -> [Float] {
                switch example {
                case .vector(let vector): vector
                case .multi(let vector): vector.flat
                default: []
                }
            }
            let flat = positive.flatMap(rows) + negative.flatMap(rows).map { -$0 }
            return .multi(MultiVector(dimension: Int(config.params.vectors.all[using]!.size), flat: flat))
        }
        if config.params.sparseVectors?[using] != nil {
            func mean(_ vectors: [QueryInput]) -> [UInt32: Float] {
                var sums: [UInt32: Float] = [:]
                for case .sparse(let vector) in vectors {
                    for (index, value) in zip(vector.indices, vector.values) { sums[index, default: 0] += value }
                }
                return sums.mapValues { $0 / Float(vectors.count) }
            }
            let positives = mean(positive)
            var result = positives
            if !negative.isEmpty {
                let negatives = mean(negative)
                for index in Set(positives.keys).union(negatives.keys) {
                    let p = positives[index] ?? 0
                    result[index] = p + p - (negatives[index] ?? 0)
                }
            }
            let indices = result.keys.sorted()
            return .sparse(SparseVector(indices: indices, values: indices.map { result[$0]! }))
        }
        func mean(_ vectors: [QueryInput]) -> [Float] {
            var sum: [Float] = []
            for case .vector(let vector) in vectors {
                if sum.isEmpty { sum = [Float](repeating: 0, count: vector.count) }
                for i in vector.indices { sum[i] += vector[i] }
            }
            return sum.map { $0 / Float(vectors.count) }
        }
        let positives = mean(positive)
        guard !negative.isEmpty else { return .vector(positives) }
        let negatives = mean(negative)
        return .vector(positives.indices.map { positives[$0] + positives[$0] - negatives[$0] })
    }

    /// How a shard scores a stored vector for a `best_score`, `sum_scores`, discover or context
    /// query on vector `using`.
    func exampleScorer(_ query: QueryInput, using: String) -> (@Sendable (StoredVector) -> Float)? {
        let distance = config.params.vectors.all[using]?.distance
        let multi = config.params.vectors.all[using]?.multivectorConfig != nil
        let maxSim = MaxSim(distance ?? .dot)
        // Dense examples normalised for Cosine, as stored vectors are; for a multivector, each
        // row, and a dense example is a multivector of one.
        func prepared(_ example: QueryInput) -> QueryInput {
            var example = example
            if multi, case .vector(let vector) = example { example = .multi(MultiVector(dimension: vector.count, flat: vector)) }
            guard distance == .cosine else { return example }
            switch example {
            case .vector(var vector):
                quiver_normalize_f32(&vector, vector.count)
                return .vector(vector)
            case .multi(let vector):
                return .multi(vector.mapRows { row in
                    var row = row
                    quiver_normalize_f32(&row, row.count)
                    return row
                })
            default:
                return example
            }
        }
        @Sendable func similarity(_ example: QueryInput, _ stored: StoredVector) -> Float {
            switch (example, stored) {
            case (.vector(let vector), .dense(let values)):
                return vector.withUnsafeBufferPointer { maxSim.similarity($0.baseAddress!, values.baseAddress!, values.count) }
            case (.sparse(let vector), .sparse(let values)):
                return vector.dot(values) ?? 0
            case (.multi(let vector), .multi(let rows)):
                return maxSim.score(vector, rows)
            default:
                return 0
            }
        }
        switch query {
        case .recommend(let positive, let negative, let strategy) where strategy != .averageVector:
            let positive = positive.map(prepared), negative = negative.map(prepared)
            if strategy == .sumScores {
                return { stored in
                    positive.reduce(0) { $0 + similarity($1, stored) } - negative.reduce(0) { $0 + similarity($1, stored) }
                }
            }
            return { stored in
                let best = positive.map { similarity($0, stored) }.max() ?? -.infinity
                let worst = negative.map { similarity($0, stored) }.max() ?? -.infinity
                return best > worst ? Self.scaledSigmoid(best) : -Self.scaledSigmoid(worst)
            }
        case .discover(let target, let context):
            let target = prepared(target)
            let pairs = context.map { ($0.positive, $0.negative) }.map { (prepared($0.0), prepared($0.1)) }
            return { stored in
                var rank = 0
                for (positive, negative) in pairs {
                    let p = similarity(positive, stored), n = similarity(negative, stored)
                    rank += p > n ? 1 : p == n ? 0 : -1
                }
                return Float(rank) + Self.scaledSigmoid(similarity(target, stored))
            }
        case .relevanceFeedback(let target, let feedback, let a, let b, let c):
            let target = prepared(target)
            // Every ordered pair of items whose scores differ, the better one first.
            var pairs: [(better: QueryInput, worse: QueryInput, weight: Float)] = []
            for better in feedback {
                for worse in feedback where better.score - worse.score > 0 {
                    pairs.append((prepared(better.example), prepared(worse.example), Foundation.pow(better.score - worse.score, b) * c))
                }
            }
            let weighted = pairs
            return { stored in
                var score = a * similarity(target, stored)
                for pair in weighted { score += pair.weight * (similarity(pair.better, stored) - similarity(pair.worse, stored)) }
                return score
            }
        case .context(let context):
            let pairs = context.map { ($0.positive, $0.negative) }.map { (prepared($0.0), prepared($0.1)) }
            return { stored in
                var total: Float = 0
                for (positive, negative) in pairs {
                    let difference = similarity(positive, stored) - similarity(negative, stored) - Float.ulpOfOne
                    total += Self.fastSigmoid(min(difference, 0))
                }
                return total
            }
        default:
            return nil
        }
    }

    static func fastSigmoid(_ x: Float) -> Float {
        guard x.isFinite else { return x }
        return x / (1 + abs(x))
    }

    /// The sigmoid Qdrant maps similarities into 0…1 with.
    static func scaledSigmoid(_ x: Float) -> Float { 0.5 * (fastSigmoid(x) + 1) }
}
