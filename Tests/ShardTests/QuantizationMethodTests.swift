import QuiverJSON
import QuiverModel
@testable import Shard
import Testing
import VectorIndex

/// Qdrant's quantization settings resolved to the methods the index builds, as the README lists them.
@Suite struct QuantizationMethodTests {
    func method(_ json: String) throws -> (QuantizationMethod, inRAM: Bool)? {
        VectorIndexSpec.method(try JSONValueDecoder().decode(QuantizationConfig.self, from: Array(json.utf8)))
    }

    @Test(arguments: [
        (#"{"scalar": {"type": "int8", "quantile": 0.99}}"#, QuantizationMethod.scalar(quantile: 0.99), false),
        (#"{"scalar": {"type": "int8", "always_ram": true}}"#, .scalar(quantile: 1), true),
        (#"{"binary": {}}"#, .binary(bits: .one, asymmetric: false), false),
        (#"{"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits", "always_ram": true}}"#, .binary(bits: .two, asymmetric: true), true),
        (#"{"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar4bits"}}"#, .binary(bits: .oneAndHalf, asymmetric: true), false),
        (#"{"binary": {"encoding": "one_bit", "query_encoding": "binary"}}"#, .binary(bits: .one, asymmetric: false), false),
        (#"{"product": {"compression": "x4"}}"#, .product(elementsPerCode: 1), false),
        (#"{"product": {"compression": "x32"}}"#, .product(elementsPerCode: 8), false),
        (#"{"product": {"compression": "x64", "always_ram": true}}"#, .product(elementsPerCode: 16), true),
        (#"{"turbo": {"bits": "bits4"}}"#, .scalar(quantile: 1), false),
        (#"{"turbo": {"bits": "bits2"}}"#, .binary(bits: .two, asymmetric: true), false),
        (#"{"turbo": {"bits": "bits1_5"}}"#, .binary(bits: .oneAndHalf, asymmetric: false), false),
        (#"{"turbo": {"bits": "bits1"}}"#, .binary(bits: .one, asymmetric: true), false),
    ])
    func settingsResolveToMethods(json: String, expected: QuantizationMethod, inRAM: Bool) throws {
        let resolved = try #require(try method(json))
        #expect(resolved.0 == expected)
        #expect(resolved.inRAM == inRAM)
    }
}
