public import QuiverModel

/// One collection on this node. For now it owns the collection's configuration; shards, points and
/// the optimizer attach here.
public actor Collection {
    public nonisolated let name: String
    /// Directory `storage/collections/<name>`.
    public nonisolated let path: String
    public private(set) var config: CollectionConfig

    init(name: String, path: String, config: CollectionConfig) {
        self.name = name
        self.path = path
        self.config = config
    }

    func replaceConfig(_ config: CollectionConfig) {
        self.config = config
    }

    public func info() -> CollectionInfo {
        CollectionInfo(status: .green, config: config)
    }
}
