import CVectorKernels
import Testing

/// The scalar kernels against plain Swift arithmetic in Double.
@Suite struct ScalarKernelTests {
    func randomVectors(_ dim: Int, seed: UInt64) -> ([Float], [Float]) {
        var rng = SplitMix64(seed: seed)
        let a = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
        return (a, b)
    }

    @Test(arguments: [1, 3, 16, 100, 384, 1536])
    func matchesReference(dim: Int) {
        let (a, b) = randomVectors(dim, seed: UInt64(dim))
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let l2 = zip(a, b).reduce(0.0) { $0 + pow2(Double($1.0) - Double($1.1)) }
        let l1 = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) }
        let tolerance = 1e-4 * Double(dim)
        #expect(abs(Double(quiver_dot_f32(a, b, dim)) - dot) < tolerance)
        #expect(abs(Double(quiver_l2sq_f32(a, b, dim)) - l2) < tolerance)
        #expect(abs(Double(quiver_l1_f32(a, b, dim)) - l1) < tolerance)
    }

    @Test func normalizeGivesUnitLength() {
        var (v, _) = randomVectors(384, seed: 7)
        let norm = quiver_normalize_f32(&v, v.count)
        #expect(norm > 0)
        #expect(abs(quiver_dot_f32(v, v, v.count) - 1) < 1e-5)
    }

    @Test func normalizeLeavesZeroVectorAlone() {
        var v = [Float](repeating: 0, count: 8)
        #expect(quiver_normalize_f32(&v, v.count) == 0)
        #expect(v.allSatisfy { $0 == 0 })
    }
}

func pow2(_ x: Double) -> Double { x * x }

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
