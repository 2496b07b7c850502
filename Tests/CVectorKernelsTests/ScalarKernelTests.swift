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

    /// The active (widest) kernels through the plain entry points, at every length up to 300 and
    /// around every multiple of 64 up to 1536, with a large last term (see `VariantKernelTests`).
    @Test func matchesReference() {
        for dim in VariantKernelTests.dims {
            var (a, b) = randomVectors(dim, seed: UInt64(dim))
            (a[dim - 1], b[dim - 1]) = (1, -1)
            let ad = a.map(Double.init), bd = b.map(Double.init)
            for (got, terms, what) in [(quiver_dot_f32(a, b, dim), zip(ad, bd).map { $0 * $1 }, "dot"),
                                       (quiver_l2sq_f32(a, b, dim), zip(ad, bd).map { pow2($0 - $1) }, "l2sq"),
                                       (quiver_l1_f32(a, b, dim), zip(ad, bd).map { abs($0 - $1) }, "l1")] {
                VariantKernelTests.close(got, terms.reduce(0, +), magnitude: terms.reduce(0) { $0 + abs($1) }, "\(what) dim \(dim)")
            }
        }
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
