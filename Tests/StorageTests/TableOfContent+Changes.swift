import DiskIO
import Logging
import QuiverModel
@testable import Storage

/// The catalogue changes the tests make, each taken the way a single node takes it: proposed to a
/// one-member consensus over the catalogue as loaded, applied by the ``ConsensusManager``.
extension TableOfContent {
    func propose(_ operation: MetadataOperation) async throws(StorageError) -> Bool {
        try await ConsensusManager.standalone(toc: self, disk: disk, logger: Logger(label: "test")).propose(operation)
    }

    func createCollection(_ name: String, _ request: CreateCollection) async throws(StorageError) {
        try checkCollectionLimit(name)
        let config = effectiveConfig(request, peers: 1)
        _ = try await propose(.createCollection(name: name, config: config, shards: ShardPlacement.initial(config, peers: [peerID])))
    }

    func updateCollection(_ name: String, _ update: UpdateCollection) async throws(StorageError) {
        _ = try await propose(.updateCollection(name: name, update: update))
    }

    func dropCollection(_ name: String) async throws(StorageError) -> Bool {
        try await propose(.deleteCollection(name: name))
    }

    func updateAliases(_ actions: [AliasOperation]) async throws(StorageError) {
        _ = try await propose(.changeAliases(actions))
    }
}
