/// A snapshot archive as the snapshot endpoints list it.
public struct SnapshotDescription: Codable, Sendable, Equatable {
    public var name: String
    /// When the archive was written, UTC, as `YYYY-MM-DDTHH:MM:SS`.
    public var creationTime: String?
    public var size: UInt64
    /// SHA-256 of the archive, lowercase hex.
    public var checksum: String?

    public init(name: String, creationTime: String?, size: UInt64, checksum: String?) {
        self.name = name
        self.creationTime = creationTime
        self.size = size
        self.checksum = checksum
    }

    enum CodingKeys: String, CodingKey {
        case name, creationTime = "creation_time", size, checksum
    }
}

/// Which data wins when a recovered replica has others in the cluster.
public enum SnapshotPriority: String, Codable, Sendable, CaseIterable {
    case noSync = "no_sync", snapshot, replica
}

/// `PUT /collections/{c}/snapshots/recover`.
public struct SnapshotRecover: Codable, Sendable, Equatable, Validatable {
    /// `file:///path` or an `http(s)://` URL.
    public var location: String
    public var priority: SnapshotPriority?
    public var checksum: String?
    public var apiKey: String?

    public init(location: String, priority: SnapshotPriority? = nil, checksum: String? = nil, apiKey: String? = nil) {
        self.location = location
        self.priority = priority
        self.checksum = checksum
        self.apiKey = apiKey
    }

    enum CodingKeys: String, CodingKey {
        case location, priority, checksum, apiKey = "api_key"
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        if let checksum, let problem = Self.checksumProblem(checksum) { errors.add(Self.join(path, "checksum"), problem) }
    }

    /// Why `checksum` is not a SHA-256 in hex (as Qdrant words it), or nil.
    public static func checksumProblem(_ checksum: String) -> String? {
        guard checksum.allSatisfy(\.isHexDigit) else { return "invalid characters, expected 0-9, a-f, A-F" }
        guard checksum.count == 64 else { return "Validation error: invalid_sha256_hash" }
        return nil
    }

    static func join(_ path: String, _ field: String) -> String { path.isEmpty ? field : path + "." + field }
}
