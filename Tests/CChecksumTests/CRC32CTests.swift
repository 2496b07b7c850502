import CChecksum
import Testing

@Suite struct CRC32CTests {
    func crc(_ bytes: [UInt8], _ f: (UInt32, UnsafeRawPointer?, Int) -> UInt32 = quiver_crc32c) -> UInt32 {
        bytes.withUnsafeBytes { f(0, $0.baseAddress, $0.count) }
    }

    @Test func knownVectors() {
        // Standard check value, and RFC 3720 (iSCSI) appendix B.4 vectors.
        #expect(crc(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(crc(Array(0...31)) == 0x46DD_794E)
        #expect(crc([]) == 0)
    }

    @Test func portableKnownVectors() {
        #expect(crc(Array("123456789".utf8), quiver_crc32c_portable) == 0xE306_9283)
        #expect(crc([UInt8](repeating: 0xFF, count: 32), quiver_crc32c_portable) == 0x62A8_AB43)
        #expect(crc(Array(0...31), quiver_crc32c_portable) == 0x46DD_794E)
    }

    /// Without SSE4.2 both sides would be the table implementation, so the run says it was skipped.
    @Test(.enabled(if: quiver_crc32c_is_hardware() != 0, "this CPU has no SSE4.2 CRC-32C instruction"))
    func hardwareMatchesPortableAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for start in 0..<8 {
            for length in 0..<(data.count - start) {
                let slice = Array(data[start..<(start + length)])
                #expect(crc(slice) == crc(slice, quiver_crc32c_portable))
            }
        }
    }

    @Test func continuesAcrossChunks() {
        let data = Array("The quick brown fox jumps over the lazy dog".utf8)
        let whole = crc(data)
        let first = data[..<10].withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }
        let both = data[10...].withUnsafeBytes { quiver_crc32c(first, $0.baseAddress, $0.count) }
        #expect(both == whole)
    }
}
