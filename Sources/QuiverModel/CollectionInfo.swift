public import QuiverJSON

public enum CollectionStatus: String, StringEnum {
    case green, yellow, grey, red
}

/// `OptimizersStatus`: `"ok"` or `{"error": "..."}`.
public enum OptimizersStatus: Codable, Sendable, Equatable {
    case ok
    case error(String)

    public init(from decoder: any Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self), s == "ok" {
            self = .ok
        } else {
            let c = try decoder.container(keyedBy: DynamicKey.self)
            self = .error(try c.decode(String.self, forKey: DynamicKey("error")))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .ok:
            var c = encoder.singleValueContainer()
            try c.encode("ok")
        case .error(let message):
            var c = encoder.container(keyedBy: DynamicKey.self)
            try c.encode(message, forKey: DynamicKey("error"))
        }
    }
}

public struct CollectionWarning: Codable, Sendable, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// `update_queue` of collection info: operations accepted but not yet applied. Updates are applied
/// before they are acknowledged, so the queue is always empty; `deferred_points` is reported when
/// the optimizer config sets `prevent_unoptimized`.
public struct UpdateQueueInfo: Codable, Sendable, Equatable {
    public var length: UInt64 = 0
    public var deferredPoints: UInt64?

    public init(length: UInt64 = 0, deferredPoints: UInt64? = nil) {
        self.length = length
        self.deferredPoints = deferredPoints
    }

    enum CodingKeys: String, CodingKey {
        case length
        case deferredPoints = "deferred_points"
    }
}

extension CollectionConfig {
    /// The warnings Qdrant gives for this configuration: `hnsw_config.inline_storage` on a dense
    /// vector (its own setting over the collection's) that is a multivector, or that has no
    /// quantization (neither its own nor the collection's); the option is then ignored.
    public var warnings: [CollectionWarning] {
        params.vectors.all.sorted { $0.key < $1.key }.compactMap { name, vector in
            guard vector.hnswConfig?.inlineStorage ?? hnswConfig.inlineStorage ?? false else { return nil }
            if vector.multivectorConfig != nil {
                return CollectionWarning(message: "The `hnsw_config.inline_storage` option for vector '\(name)' is not compatible with multivectors. This option will be ignored.")
            }
            if vector.quantizationConfig == nil, quantizationConfig == nil {
                return CollectionWarning(message: "The `hnsw_config.inline_storage` option for vector '\(name)' requires quantization to be enabled. This option will be ignored.")
            }
            return nil
        }
    }
}

/// `GET /collections/{name}` result (`CollectionInfo`).
public struct CollectionInfo: Codable, Sendable, Equatable {
    public var status: CollectionStatus
    public var optimizerStatus: OptimizersStatus
    public var warnings: [CollectionWarning]
    public var indexedVectorsCount: UInt64
    public var pointsCount: UInt64
    public var segmentsCount: UInt64
    public var config: CollectionConfig
    /// Payload indexes by field; filled by the payload-index layer.
    public var payloadSchema: [String: JSONValue]
    public var updateQueue: UpdateQueueInfo

    public init(status: CollectionStatus, optimizerStatus: OptimizersStatus = .ok, warnings: [CollectionWarning] = [],
                indexedVectorsCount: UInt64 = 0, pointsCount: UInt64 = 0, segmentsCount: UInt64 = 0,
                config: CollectionConfig, payloadSchema: [String: JSONValue] = [:], updateQueue: UpdateQueueInfo = UpdateQueueInfo()) {
        self.status = status
        self.optimizerStatus = optimizerStatus
        self.warnings = warnings
        self.indexedVectorsCount = indexedVectorsCount
        self.pointsCount = pointsCount
        self.segmentsCount = segmentsCount
        self.config = config
        self.payloadSchema = payloadSchema
        self.updateQueue = updateQueue
    }

    enum CodingKeys: String, CodingKey {
        case status
        case optimizerStatus = "optimizer_status"
        case warnings
        case indexedVectorsCount = "indexed_vectors_count"
        case pointsCount = "points_count"
        case segmentsCount = "segments_count"
        case config
        case payloadSchema = "payload_schema"
        case updateQueue = "update_queue"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decode(CollectionStatus.self, forKey: .status)
        optimizerStatus = try c.decode(OptimizersStatus.self, forKey: .optimizerStatus)
        warnings = try c.decodeIfPresent([CollectionWarning].self, forKey: .warnings) ?? []
        indexedVectorsCount = try c.decodeIfPresent(UInt64.self, forKey: .indexedVectorsCount) ?? 0
        pointsCount = try c.decodeIfPresent(UInt64.self, forKey: .pointsCount) ?? 0
        segmentsCount = try c.decode(UInt64.self, forKey: .segmentsCount)
        config = try c.decode(CollectionConfig.self, forKey: .config)
        payloadSchema = try c.decode([String: JSONValue].self, forKey: .payloadSchema)
        updateQueue = try c.decodeIfPresent(UpdateQueueInfo.self, forKey: .updateQueue) ?? UpdateQueueInfo()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(optimizerStatus, forKey: .optimizerStatus)
        if !warnings.isEmpty { try c.encode(warnings, forKey: .warnings) }
        try c.encode(indexedVectorsCount, forKey: .indexedVectorsCount)
        try c.encode(pointsCount, forKey: .pointsCount)
        try c.encode(segmentsCount, forKey: .segmentsCount)
        try c.encode(config, forKey: .config)
        try c.encode(SortedMap(payloadSchema), forKey: .payloadSchema)
        try c.encode(updateQueue, forKey: .updateQueue)
    }
}

public struct CollectionDescription: Codable, Sendable, Equatable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct CollectionsResponse: Codable, Sendable, Equatable {
    public var collections: [CollectionDescription]
    public init(collections: [CollectionDescription]) { self.collections = collections }
}

public struct CollectionExistence: Codable, Sendable, Equatable {
    public var exists: Bool
    public init(exists: Bool) { self.exists = exists }
}

public struct AliasDescription: Codable, Sendable, Equatable {
    public var aliasName: String
    public var collectionName: String

    public init(aliasName: String, collectionName: String) {
        self.aliasName = aliasName
        self.collectionName = collectionName
    }

    enum CodingKeys: String, CodingKey {
        case aliasName = "alias_name"
        case collectionName = "collection_name"
    }
}

public struct CollectionsAliasesResponse: Codable, Sendable, Equatable {
    public var aliases: [AliasDescription]
    public init(aliases: [AliasDescription]) { self.aliases = aliases }
}

/// One action of `POST /collections/aliases`.
public enum AliasOperation: Codable, Sendable, Equatable {
    case create(collectionName: String, aliasName: String)
    case delete(aliasName: String)
    case rename(oldAliasName: String, newAliasName: String)

    struct Create: Codable { let collection_name: String; let alias_name: String }
    struct Delete: Codable { let alias_name: String }
    struct Rename: Codable { let old_alias_name: String; let new_alias_name: String }

    enum CodingKeys: String, CodingKey {
        case createAlias = "create_alias"
        case deleteAlias = "delete_alias"
        case renameAlias = "rename_alias"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let present = c.allKeys
        guard present.count == 1, let key = present.first else {
            throw JSONDecodingError(path: JSONDecodingError.render(decoder.codingPath),
                                    message: "expected exactly one of `create_alias`, `delete_alias`, `rename_alias`")
        }
        switch key {
        case .createAlias:
            let op = try c.decode(Create.self, forKey: .createAlias)
            self = .create(collectionName: op.collection_name, aliasName: op.alias_name)
        case .deleteAlias:
            self = .delete(aliasName: try c.decode(Delete.self, forKey: .deleteAlias).alias_name)
        case .renameAlias:
            let op = try c.decode(Rename.self, forKey: .renameAlias)
            self = .rename(oldAliasName: op.old_alias_name, newAliasName: op.new_alias_name)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .create(let collection, let alias):
            try c.encode(Create(collection_name: collection, alias_name: alias), forKey: .createAlias)
        case .delete(let alias):
            try c.encode(Delete(alias_name: alias), forKey: .deleteAlias)
        case .rename(let old, let new):
            try c.encode(Rename(old_alias_name: old, new_alias_name: new), forKey: .renameAlias)
        }
    }
}

public struct ChangeAliasesOperation: Codable, Sendable, Equatable, Validatable {
    public var actions: [AliasOperation]

    public init(actions: [AliasOperation]) { self.actions = actions }

    public func validate(into errors: inout ValidationErrors, path: String) {
        for (i, action) in actions.enumerated() {
            let names: [(String, String)] = switch action {
            case .create(_, let alias): [("create_alias.alias_name", alias)]
            case .delete: []
            case .rename(_, let new): [("rename_alias.new_alias_name", new)]
            }
            for (field, name) in names {
                if let problem = NameRules.collectionNameProblem(name, kind: "alias name") {
                    errors.add("actions[\(i)].\(field)", problem)
                }
            }
        }
    }
}
