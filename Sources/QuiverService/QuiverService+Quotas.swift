public import QuiverModel
import Storage

/// `/quotas`: the node-wide limits on resident memory and disk usage. A cluster changes them
/// through consensus (every peer enforces them against its own resources); a single node keeps
/// them in `quota.json`.
extension QuiverService {
    public func quotaStatus() async throws(ServiceError) -> QuotaStatus {
        try Access.requireGlobal(manage: false)
        guard let quota = toc.quota else {
            return QuotaStatus(config: QuotaConfig(), usage: QuotaUsage(residentMemoryPercent: nil, diskUsagePercent: nil), peers: nil)
        }
        let own = quota.peerUsage()
        guard let cluster else { return QuotaStatus(config: quota.config, usage: own.usage, peers: nil) }
        let me = consensus.peerId
        let others = cluster.status().peers.keys.compactMap(UInt64.init).filter { $0 != me }
        // Peers that do not answer are left out: their absence is the news.
        let answers = await withTaskGroup(of: (UInt64, PeerQuotaUsage?).self) { group in
            for peer in others {
                group.addTask {
                    // The call is bounded by the p2p timeouts.
                    (peer, try? await cluster.quotaUsage(of: peer))
                }
            }
            var answers: [String: PeerQuotaUsage] = ["\(me)": own]
            for await (peer, usage) in group {
                if let usage { answers["\(peer)"] = usage }
            }
            return answers
        }
        return QuotaStatus(config: quota.config, usage: own.usage, peers: answers)
    }

    /// Which resources this node refuses updates over now; nil when no quota is kept here.
    public var quotaExceeded: QuotaExceeded? { toc.quota?.exceeded() }

    /// `PUT /quotas`: replaces the configuration. In a cluster it returns once this peer applied it.
    public func setQuotas(_ config: QuotaConfig, timeout: Duration? = nil) async throws(ServiceError) -> Bool {
        try Access.requireGlobal(manage: true)
        try Self.validate(config)
        if cluster != nil {
            _ = try await propose(.setQuota(config), timeout: timeout)
        } else {
            guard let quota = toc.quota else { throw .storage(.badRequest("Quotas are not enforced on this node")) }
            do {
                try quota.store(config)
            } catch {
                throw .storage(error)
            }
        }
        return true
    }
}
