public import QuiverJSON

public enum ScalarType: String, StringEnum {
    case int8
}

public struct ScalarQuantizationConfig: Codable, Sendable, Equatable {
    public var type: ScalarType
    public var quantile: Double?
    public var alwaysRam: Bool?
    public var memory: Memory?

    public init(type: ScalarType, quantile: Double? = nil, alwaysRam: Bool? = nil, memory: Memory? = nil) {
        self.type = type
        self.quantile = quantile
        self.alwaysRam = alwaysRam
        self.memory = memory
    }

    enum CodingKeys: String, CodingKey {
        case type, quantile
        case alwaysRam = "always_ram"
        case memory
    }
}

public enum CompressionRatio: String, StringEnum {
    case x4, x8, x16, x32, x64
}

public struct ProductQuantizationConfig: Codable, Sendable, Equatable {
    public var compression: CompressionRatio
    public var alwaysRam: Bool?
    public var memory: Memory?

    public init(compression: CompressionRatio, alwaysRam: Bool? = nil, memory: Memory? = nil) {
        self.compression = compression
        self.alwaysRam = alwaysRam
        self.memory = memory
    }

    enum CodingKeys: String, CodingKey {
        case compression
        case alwaysRam = "always_ram"
        case memory
    }
}

public enum BinaryQuantizationEncoding: String, StringEnum {
    case oneBit = "one_bit"
    case twoBits = "two_bits"
    case oneAndHalfBits = "one_and_half_bits"
}

public enum BinaryQuantizationQueryEncoding: String, StringEnum {
    case `default`, binary, scalar4bits, scalar8bits
}

public struct BinaryQuantizationConfig: Codable, Sendable, Equatable {
    public var alwaysRam: Bool?
    public var memory: Memory?
    public var encoding: BinaryQuantizationEncoding?
    public var queryEncoding: BinaryQuantizationQueryEncoding?

    public init(alwaysRam: Bool? = nil, encoding: BinaryQuantizationEncoding? = nil, queryEncoding: BinaryQuantizationQueryEncoding? = nil) {
        self.alwaysRam = alwaysRam
        self.encoding = encoding
        self.queryEncoding = queryEncoding
    }

    enum CodingKeys: String, CodingKey {
        case alwaysRam = "always_ram"
        case memory, encoding
        case queryEncoding = "query_encoding"
    }
}

public enum TurboQuantBitSize: String, StringEnum {
    case bits1, bits1_5, bits2, bits4
}

public struct TurboQuantizationConfig: Codable, Sendable, Equatable {
    public var alwaysRam: Bool?
    public var memory: Memory?
    public var bits: TurboQuantBitSize?

    enum CodingKeys: String, CodingKey {
        case alwaysRam = "always_ram"
        case memory, bits
    }
}

/// One quantization method (`QuantizationConfig`): an object with exactly one of `scalar`,
/// `product`, `binary` or `turbo`.
public enum QuantizationConfig: Codable, Sendable, Equatable, Validatable {
    case scalar(ScalarQuantizationConfig)
    case product(ProductQuantizationConfig)
    case binary(BinaryQuantizationConfig)
    case turbo(TurboQuantizationConfig)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case scalar, product, binary, turbo
    }

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        let path = JSONDecodingError.render(decoder.codingPath)
        guard case .object(let object) = value else {
            throw JSONDecodingError(path: path, message: "invalid type: \(value.kindDescription), expected a quantization config")
        }
        let methods = object.keys.filter { CodingKeys(rawValue: $0) != nil }
        guard methods.count == 1, object.count == 1 else {
            throw JSONDecodingError(path: path, message: "expected exactly one of `scalar`, `product`, `binary`, `turbo`")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch CodingKeys(rawValue: methods[0])! {
        case .scalar: self = .scalar(try c.decode(ScalarQuantizationConfig.self, forKey: .scalar))
        case .product: self = .product(try c.decode(ProductQuantizationConfig.self, forKey: .product))
        case .binary: self = .binary(try c.decode(BinaryQuantizationConfig.self, forKey: .binary))
        case .turbo: self = .turbo(try c.decode(TurboQuantizationConfig.self, forKey: .turbo))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .scalar(let config): try c.encode(config, forKey: .scalar)
        case .product(let config): try c.encode(config, forKey: .product)
        case .binary(let config): try c.encode(config, forKey: .binary)
        case .turbo(let config): try c.encode(config, forKey: .turbo)
        }
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        if case .scalar(let config) = self {
            errors.range(fieldPath(path, "scalar.quantile"), config.quantile, min: 0.5, max: 1.0)
        }
    }
}

/// A quantization update: a new method, or `"Disabled"` to remove quantization.
public enum QuantizationConfigDiff: Codable, Sendable, Equatable, Validatable {
    case set(QuantizationConfig)
    case disabled

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        if case .string(let s) = value {
            guard s == "Disabled" else {
                throw JSONDecodingError(path: JSONDecodingError.render(decoder.codingPath),
                                        message: "unknown variant `\(s)`, expected `Disabled` or a quantization config")
            }
            self = .disabled
        } else {
            self = .set(try QuantizationConfig(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .set(let config): try config.encode(to: encoder)
        case .disabled:
            var c = encoder.singleValueContainer()
            try c.encode("Disabled")
        }
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        if case .set(let config) = self { config.validate(into: &errors, path: path) }
    }

    public var config: QuantizationConfig? {
        if case .set(let config) = self { return config }
        return nil
    }
}
