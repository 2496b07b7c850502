public import QuiverJSON
import QuiverModel
import Storage

extension QuiverService {
    /// `GET /telemetry` (`TelemetryData`) at `detailsLevel` as Qdrant's levels go: 0 gives the app,
    /// the number of collections and whether the cluster is enabled; 1 adds the app's features, one
    /// aggregated entry per collection and, in a cluster, the consensus status; 2 adds the peers;
    /// 3 and above add each peer's metadata (its version).
    public func telemetry(id: String, startup: String, detailsLevel: Int) async -> JSONValue {
        var app = JSONObject([("name", "quiver"), ("version", .string(Self.apiVersion)), ("startup", .string(startup))])
        var collections = JSONObject([("number_of_collections", .int(Int64(await collectionCount())))])
        var cluster = JSONObject([("enabled", .bool(self.cluster != nil)), ("resharding_enabled", false)])
        if detailsLevel >= 1 {
            app["features"] = ["debug": false, "service_debug_feature": false, "recovery_mode": false, "gpu": false,
                               "rocksdb": false, "staging": false]
            var entries: [JSONValue] = []
            for name in await toc.collectionNames {
                guard let info = try? await toc.collectionInfo(name) else { continue }
                let params = (try? JSONValueEncoder().encode(info.config.params)) ?? .null
                let status = (try? JSONValueEncoder().encode(info.optimizerStatus)) ?? "ok"
                entries.append(["vectors": .int(Int64(info.config.params.vectors.all.count)), "optimizers_status": status, "params": params])
            }
            collections["collections"] = .array(entries)
        }
        if let control = self.cluster {
            let status = control.status()
            if detailsLevel >= 1 {
                let consensus: JSONValue = switch status.consensusThreadStatus {
                case .working(let lastUpdate): ["consensus_thread_status": "working", "last_update": .string(lastUpdate)]
                case .stopped: ["consensus_thread_status": "stopped"]
                }
                cluster["status"] = [
                    "number_of_peers": .int(Int64(status.peers.count)),
                    "term": .unsigned(status.raftInfo.term),
                    "commit": .unsigned(status.raftInfo.commit),
                    "pending_operations": .unsigned(status.raftInfo.pendingOperations),
                    "role": status.raftInfo.role.map(JSONValue.string) ?? .null,
                    "is_voter": .bool(status.raftInfo.isVoter),
                    "peer_id": .unsigned(status.peerId),
                    "consensus_thread_status": consensus,
                ]
            }
            if detailsLevel >= 2 {
                cluster["peers"] = .object(JSONObject(status.peers.sorted { $0.key < $1.key }.map { ($0.key, ["uri": .string($0.value.uri)] as JSONValue) }))
            }
            if detailsLevel >= 3 {
                // Peers do not exchange their versions yet: each is reported with this build's API version.
                cluster["peer_metadata"] = .object(JSONObject(status.peers.keys.sorted().map { ($0, ["version": .string(Self.apiVersion)] as JSONValue) }))
            }
        }
        return ["id": .string(id), "app": .object(app), "collections": .object(collections), "cluster": .object(cluster)]
    }
}
