import CVectorKernels
import Testing

/// Every SIMD variant against exact arithmetic and against the scalar kernels, at every length up
/// to 300 and around every multiple of 64 up to 1536 (so every unroll width meets every tail
/// length); and the batch entry point against single calls. A variant this CPU lacks is reported
/// as skipped, not passed.
///
/// Tolerances are relative to the sum of the terms' magnitudes, 2e-5 of it, and the last element
/// of every vector is set so that its own term is large: a kernel that drops or repeats a tail
/// element misses by at least one large term, far beyond the tolerance at every length tested.
@Suite struct VariantKernelTests {
    static let variants: [quiver_isa] = [QUIVER_ISA_AVX2, QUIVER_ISA_AVX512, QUIVER_ISA_NEON, QUIVER_ISA_AVX512_VNNI]
    static let dims: [Int] = Array(1...300) + stride(from: 320, through: 1536, by: 64).flatMap { [$0 - 1, $0, $0 + 1] }

    static func has(_ isa: quiver_isa) -> Bool { quiver_kernels_for(isa) != nil }

    @Test func thisMachineHasAVariant() {
        #if arch(x86_64) || arch(arm64)
        let available = Self.variants.filter(Self.has)
        #expect(!available.isEmpty)
        // The plain entry points use the widest one.
        #expect(quiver_active_isa() == available.last)
        #endif
    }

    @Test func scalarStoredTypeKernels() { Self.storedTypeKernels(QUIVER_ISA_SCALAR) }
    @Test(.enabled(if: has(QUIVER_ISA_AVX2), "this CPU has no AVX2")) func avx2StoredTypeKernels() { Self.storedTypeKernels(QUIVER_ISA_AVX2) }
    @Test(.enabled(if: has(QUIVER_ISA_AVX512), "this CPU has no AVX-512")) func avx512StoredTypeKernels() { Self.storedTypeKernels(QUIVER_ISA_AVX512) }
    @Test(.enabled(if: has(QUIVER_ISA_NEON), "this CPU has no NEON")) func neonStoredTypeKernels() { Self.storedTypeKernels(QUIVER_ISA_NEON) }
    @Test(.enabled(if: has(QUIVER_ISA_AVX512_VNNI), "this CPU has no AVX-512 VNNI")) func vnniStoredTypeKernels() {
        Self.storedTypeKernels(QUIVER_ISA_AVX512_VNNI)
    }

    @Test(.enabled(if: has(QUIVER_ISA_AVX2), "this CPU has no AVX2")) func avx2Float32Kernels() { Self.float32Kernels(QUIVER_ISA_AVX2) }
    @Test(.enabled(if: has(QUIVER_ISA_AVX512), "this CPU has no AVX-512")) func avx512Float32Kernels() { Self.float32Kernels(QUIVER_ISA_AVX512) }
    @Test(.enabled(if: has(QUIVER_ISA_NEON), "this CPU has no NEON")) func neonFloat32Kernels() { Self.float32Kernels(QUIVER_ISA_NEON) }
    @Test(.enabled(if: has(QUIVER_ISA_AVX512_VNNI), "this CPU has no AVX-512 VNNI")) func vnniFloat32Kernels() {
        Self.float32Kernels(QUIVER_ISA_AVX512_VNNI)
    }

    /// `got` within 2e-5 of `magnitude` (the sum of the terms' magnitudes) of `want`.
    static func close(_ got: Float, _ want: Double, magnitude: Double, _ what: @autoclosure () -> String) {
        #expect(abs(Double(got) - want) <= 2e-5 * max(1, magnitude), "\(what()): got \(got), want \(want)")
    }

    /// The float16, uint8, 8-bit code and bit-string kernels of `isa` against exact arithmetic.
    static func storedTypeKernels(_ isa: quiver_isa) {
        let kernels = quiver_kernels_for(isa)!.pointee
        let scalar = quiver_kernels_for(QUIVER_ISA_SCALAR)!.pointee
        let name = String(cString: quiver_isa_name(isa))
        var rng = SplitMix64(seed: 99)
        for dim in dims {
            var q = (0..<dim).map { _ in Float.random(in: -2...2, using: &rng) }
            var halves = (0..<dim).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
            var bytes = (0..<dim).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var other = (0..<dim).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var signed = (0..<dim).map { _ in Int8.random(in: -128...127, using: &rng) }
            (q[dim - 1], halves[dim - 1], bytes[dim - 1], other[dim - 1], signed[dim - 1]) = (2, -2, 255, 0, 127)
            let halfBits = halves.map(\.bitPattern)
            let h = halves.map(Double.init), u = bytes.map(Double.init), qd = q.map(Double.init)
            func check(_ got: Float, _ terms: [Double], _ what: String) {
                close(got, terms.reduce(0, +), magnitude: terms.reduce(0) { $0 + abs($1) }, "\(name) \(what) dim \(dim)")
            }
            check(kernels.dot_f16(q, halfBits, dim), zip(qd, h).map { $0 * $1 }, "dot_f16")
            check(kernels.l2sq_f16(q, halfBits, dim), zip(qd, h).map { pow2($0 - $1) }, "l2sq_f16")
            check(kernels.l1_f16(q, halfBits, dim), zip(qd, h).map { abs($0 - $1) }, "l1_f16")
            check(kernels.dot_u8(q, bytes, dim), zip(qd, u).map { $0 * $1 }, "dot_u8")
            check(kernels.l2sq_u8(q, bytes, dim), zip(qd, u).map { pow2($0 - $1) }, "l2sq_u8")
            check(kernels.l1_u8(q, bytes, dim), zip(qd, u).map { abs($0 - $1) }, "l1_u8")
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
        maxSim(isa)
    }

    /// `max_sim` of `isa`: for each query row its nearest stored row by the variant's own float32
    /// kernel, summed in row order, so bit for bit what those kernels give one pair at a time.
    static func maxSim(_ isa: quiver_isa) {
        let kernels = quiver_kernels_for(isa)!.pointee
        let name = String(cString: quiver_isa_name(isa))
        var rng = SplitMix64(seed: 7)
        for dim in [1, 3, 8, 17, 64, 128, 131] {
            for (queryRows, rows) in [(1, 1), (3, 5), (8, 14), (2, 0)] {
                let query = (0..<(queryRows * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
                let points = (0..<(rows * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
                for (metric, pair) in [(QUIVER_METRIC_DOT, { (a: UnsafePointer<Float>, b: UnsafePointer<Float>) in -kernels.dot_f32(a, b, dim) }),
                                       (QUIVER_METRIC_L2SQ, { kernels.l2sq_f32($0, $1, dim) }), (QUIVER_METRIC_L1, { kernels.l1_f32($0, $1, dim) })] {
                    var want: Float = rows == 0 ? .infinity : 0
                    query.withUnsafeBufferPointer { q in
                        points.withUnsafeBufferPointer { p in
                            for i in 0..<queryRows where rows > 0 {
                                var best = Float.infinity
                                for j in 0..<rows { best = min(best, pair(q.baseAddress! + i * dim, p.baseAddress! + j * dim)) }
                                want += best
                            }
                        }
                    }
                    let got = kernels.maxsim_f32(metric, query, queryRows, points, rows, dim)
                    #expect(got == want, "\(name) maxsim metric \(metric.rawValue) dim \(dim) rows \(queryRows)x\(rows)")
                }
            }
        }
    }

    /// The float32 kernels of `isa` against exact arithmetic and against the scalar kernels.
    static func float32Kernels(_ isa: quiver_isa) {
        let kernels = quiver_kernels_for(isa)!.pointee
        let scalar = quiver_kernels_for(QUIVER_ISA_SCALAR)!.pointee
        let name = String(cString: quiver_isa_name(isa))
        for dim in dims {
            var (a, b) = ScalarKernelTests().randomVectors(dim, seed: UInt64(dim) &* 31)
            (a[dim - 1], b[dim - 1]) = (1, -1)
            let ad = a.map(Double.init), bd = b.map(Double.init)
            for (kernel, variant, reference, terms) in [
                ("dot", kernels.dot_f32!, scalar.dot_f32!, zip(ad, bd).map { $0 * $1 }),
                ("l2sq", kernels.l2sq_f32!, scalar.l2sq_f32!, zip(ad, bd).map { pow2($0 - $1) }),
                ("l1", kernels.l1_f32!, scalar.l1_f32!, zip(ad, bd).map { abs($0 - $1) }),
            ] {
                let magnitude = terms.reduce(0) { $0 + abs($1) }
                close(variant(a, b, dim), terms.reduce(0, +), magnitude: magnitude, "\(name) \(kernel) dim \(dim)")
                close(variant(a, b, dim), Double(reference(a, b, dim)), magnitude: magnitude, "\(name) \(kernel) against scalar, dim \(dim)")
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
