import CVectorKernels
import Testing

/// Every SIMD variant this CPU has against the scalar one, at lengths around every unroll and
/// tail boundary; and the batch entry point against single calls.
@Suite struct VariantKernelTests {
    static let variants: [quiver_isa] = [QUIVER_ISA_AVX2, QUIVER_ISA_AVX512, QUIVER_ISA_NEON, QUIVER_ISA_AVX512_VNNI]
    static let dims = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 50, 64, 100, 128, 384, 768, 1536]

    @Test func thisMachineHasAVariant() {
        #if arch(x86_64) || arch(arm64)
        let available = Self.variants.filter { quiver_kernels_for($0) != nil }
        #expect(!available.isEmpty)
        // The plain entry points use the widest one.
        #expect(quiver_active_isa() == available.last)
        #endif
    }

    /// The float16, uint8, 8-bit code and bit-string kernels against the scalar ones, and the
    /// scalar ones against Swift arithmetic.
    @Test(arguments: [QUIVER_ISA_SCALAR] + variants)
    func storedTypeKernelsMatchScalar(isa: quiver_isa) throws {
        guard let kernels = quiver_kernels_for(isa)?.pointee else { return }
        let scalar = quiver_kernels_for(QUIVER_ISA_SCALAR)!.pointee
        let name = String(cString: quiver_isa_name(isa))
        var rng = SplitMix64(seed: 99)
        for dim in Self.dims + [63, 65, 127, 129, 255, 256, 257] {
            let q = (0..<dim).map { _ in Float.random(in: -2...2, using: &rng) }
            let halves = (0..<dim).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
            let halfBits = halves.map(\.bitPattern)
            let bytes = (0..<dim).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let other = (0..<dim).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let signed = (0..<dim).map { _ in Int8.random(in: -128...127, using: &rng) }
            func close(_ got: Float, _ want: Double, _ what: String) {
                #expect(abs(Double(got) - want) <= 1e-4 * Double(dim) * max(1, abs(want)), "\(name) \(what) dim \(dim)")
            }
            let h = halves.map(Double.init), u = bytes.map(Double.init), qd = q.map(Double.init)
            close(kernels.dot_f16(q, halfBits, dim), zip(qd, h).reduce(0) { $0 + $1.0 * $1.1 }, "dot_f16")
            close(kernels.l2sq_f16(q, halfBits, dim), zip(qd, h).reduce(0) { $0 + pow2($1.0 - $1.1) }, "l2sq_f16")
            close(kernels.l1_f16(q, halfBits, dim), zip(qd, h).reduce(0) { $0 + abs($1.0 - $1.1) }, "l1_f16")
            close(kernels.dot_u8(q, bytes, dim), zip(qd, u).reduce(0) { $0 + $1.0 * $1.1 }, "dot_u8")
            close(kernels.l2sq_u8(q, bytes, dim), zip(qd, u).reduce(0) { $0 + pow2($1.0 - $1.1) }, "l2sq_u8")
            close(kernels.l1_u8(q, bytes, dim), zip(qd, u).reduce(0) { $0 + abs($1.0 - $1.1) }, "l1_u8")
            // Integer kernels are exact.
            let dot = zip(bytes, signed).reduce(Int32(0)) { $0 + Int32($1.0) * Int32($1.1) }
            #expect(kernels.dot_u8s8(bytes, signed, dim) == dot, "\(name) dot_u8s8 dim \(dim)")
            #expect(kernels.dot_u8s8(bytes, signed, dim) == scalar.dot_u8s8(bytes, signed, dim))
            let sad = zip(bytes, other).reduce(UInt32(0)) { $0 + UInt32(abs(Int($1.0) - Int($1.1))) }
            #expect(kernels.sad_u8(bytes, other, dim) == sad, "\(name) sad_u8 dim \(dim)")
            let words = (dim + 63) / 64
            let a = (0..<words).map { _ in rng.next() }, b = (0..<words).map { _ in rng.next() }
            let bits = zip(a, b).reduce(UInt32(0)) { $0 + UInt32(($1.0 ^ $1.1).nonzeroBitCount) }
            #expect(kernels.hamming(a, b, words) == bits, "\(name) hamming words \(words)")
        }
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
