import CVectorKernels
import Testing

/// Every SIMD variant this CPU has against the scalar one, at lengths around every unroll and
/// tail boundary; and the batch entry point against single calls.
@Suite struct VariantKernelTests {
    static let variants: [quiver_isa] = [QUIVER_ISA_AVX2, QUIVER_ISA_AVX512, QUIVER_ISA_NEON]
    static let dims = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 50, 64, 100, 128, 384, 768, 1536]

    @Test func thisMachineHasAVariant() {
        #if arch(x86_64) || arch(arm64)
        let available = Self.variants.filter { quiver_kernels_for($0) != nil }
        #expect(!available.isEmpty)
        // The plain entry points use the widest one.
        #expect(quiver_active_isa() == available.last)
        #endif
    }

    @Test(arguments: variants)
    func matchesScalar(isa: quiver_isa) throws {
        guard let kernels = quiver_kernels_for(isa)?.pointee else { return } // not on this CPU: nothing to run
        let scalar = quiver_kernels_for(QUIVER_ISA_SCALAR)!.pointee
        for dim in Self.dims {
            let (a, b) = ScalarKernelTests().randomVectors(dim, seed: UInt64(dim) &* 31)
            for (name, variant, reference) in [("dot", kernels.dot_f32!, scalar.dot_f32!), ("l2sq", kernels.l2sq_f32!, scalar.l2sq_f32!),
                                                ("l1", kernels.l1_f32!, scalar.l1_f32!)] {
                let got = variant(a, b, dim), want = reference(a, b, dim)
                #expect(abs(got - want) <= 1e-5 * Float(dim) * max(1, abs(want)), "\(String(cString: quiver_isa_name(isa))) \(name) dim \(dim)")
            }
        }
    }

    @Test func batchMatchesSingleCalls() {
        let dim = 100, count = 50
        var rng = SplitMix64(seed: 3)
        let base = (0..<(count * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
        let query = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
        let offsets: [UInt32] = (0..<UInt32(count)).reversed().filter { $0 % 3 != 0 }
        for (metric, single) in [(QUIVER_METRIC_DOT, quiver_dot_f32), (QUIVER_METRIC_L2SQ, quiver_l2sq_f32), (QUIVER_METRIC_L1, quiver_l1_f32)] {
            var out = [Float](repeating: .nan, count: offsets.count)
            base.withUnsafeBufferPointer { b in
                quiver_score_batch_f32(metric, query, b.baseAddress!, offsets, offsets.count, dim, &out)
                for (i, offset) in offsets.enumerated() {
                    #expect(out[i] == single(query, b.baseAddress! + Int(offset) * dim, dim))
                }
            }
        }
    }
}
