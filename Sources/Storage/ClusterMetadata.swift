public import QuiverJSON
public import QuiverModel

/// A change to cluster metadata, carried through consensus (DESIGN.md §4). Each operation is
/// complete and deterministic: every peer that applies it to the same ``ClusterMetadata`` reaches
/// the same state and the same outcome.
public enum MetadataOperation: Codable, Sendable, Equatable {
    /// The proposer resolves the request against its defaults; every peer uses this config.
    case createCollection(name: String, config: CollectionConfig)
    case updateCollection(name: String, update: UpdateCollection)
    case deleteCollection(name: String)
    case changeAliases([AliasOperation])
    /// A `null` value deletes the key (as in Qdrant).
    case setMetadataKey(key: String, value: JSONValue)
    /// `--reinit`: the cluster is re-founded with this peer's state.
    case replaceState(ClusterMetadata)
}

/// The replicated catalogue: what every peer's ``TableOfContent`` converges to.
public struct ClusterMetadata: Codable, Sendable, Equatable {
    /// Index of the last log entry applied to this state.
    public var appliedIndex: UInt64 = 0
    public var collections: [String: CollectionConfig] = [:]
    /// alias → collection
    public var aliases: [String: String] = [:]
    /// `/cluster/metadata/keys`
    public var keys: [String: JSONValue] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case appliedIndex = "applied_index", collections, aliases, keys
    }

    /// Applies `operation`; on failure the state is unchanged. Returns the operation's answer
    /// (`false` for deleting a collection that did not exist).
    public mutating func apply(_ operation: MetadataOperation) -> Result<Bool, StorageError> {
        switch operation {
        case .createCollection(let name, let config):
            do throws(StorageError) {
                try Self.checkNewCollection(name, collections: collections.keys.contains(name), alias: aliases[name] != nil)
            } catch {
                return .failure(error)
            }
            collections[name] = config
            return .success(true)
        case .updateCollection(let name, let update):
            guard let current = collections[Self.resolve(name, aliases: aliases)] else {
                return .failure(.collectionNotFound(name))
            }
            do {
                collections[Self.resolve(name, aliases: aliases)] = try current.applying(update)
            } catch {
                return .failure(.badInput(error.message))
            }
            return .success(true)
        case .deleteCollection(let name):
            guard collections.removeValue(forKey: name) != nil else { return .success(false) }
            aliases = aliases.filter { $0.value != name }
            return .success(true)
        case .changeAliases(let actions):
            do {
                aliases = try Self.applying(actions, to: aliases) { collections[$0] != nil }
            } catch {
                return .failure(error)
            }
            return .success(true)
        case .setMetadataKey(let key, let value):
            keys[key] = value.isNull ? nil : value
            return .success(true)
        case .replaceState(let state):
            let index = appliedIndex
            self = state
            appliedIndex = index
            return .success(true)
        }
    }

    static func resolve(_ name: String, aliases: [String: String]) -> String {
        aliases[name] ?? name
    }

    /// The rules for a new collection's name, shared by single-node storage and consensus.
    static func checkNewCollection(_ name: String, collections exists: Bool, alias: Bool) throws(StorageError) {
        if exists { throw .collectionExists(name) }
        if alias {
            throw .badInput("Can't create collection with name \(name). Alias with the same name already exists")
        }
    }

    /// Applies all alias actions or none: each is checked, in order, against a working copy.
    static func applying(_ actions: [AliasOperation], to aliases: [String: String],
                         collectionExists: (String) -> Bool) throws(StorageError) -> [String: String] {
        var next = aliases
        for action in actions {
            switch action {
            case .create(let collectionName, let aliasName):
                guard collectionExists(collectionName) else { throw .collectionNotFound(collectionName) }
                if collectionExists(aliasName) { throw .collectionExists(aliasName) }
                next[aliasName] = collectionName
            case .delete(let aliasName):
                // Deleting a missing alias is not an error (as in Qdrant): a blue/green switch
                // "delete alias, create alias" must also work the first time.
                next[aliasName] = nil
            case .rename(let oldName, let newName):
                guard let target = next.removeValue(forKey: oldName) else {
                    throw .notFound("Alias \(oldName) does not exists!")
                }
                if collectionExists(newName) { throw .collectionExists(newName) }
                next[newName] = target
            }
        }
        return next
    }
}
