import QuiverJSON
public import QuiverModel
import Shard

/// Reads (DESIGN.md §4): the fan-out that asks each shard's replicas, hedging slow ones, and the
/// merging of their answers.
extension Collection {
    // MARK: Fan-out

    /// Runs `request` on every shard in `groups`: each shard is read from one replica, local when
    /// this peer holds one, and each other peer involved gets one call for all its shards;
    /// `read_fan_out_factor` more replicas are asked at once. A peer that has not answered within
    /// `read_fan_out_delay_ms` (else the network's `slowAfter`) has its shards asked of other
    /// replicas as well (the first complete answer counts); a peer that fails has them asked again
    /// elsewhere.
    ///
    /// During a resharding, each shard answers only for the points it owns under the count reads
    /// use, as the routing stood when `groups` was taken (the caller takes them in the same turn).
    func fanOut(_ request: ShardRequest, _ groups: [[ShardInfo]], consistency: ReadConsistency = .default,
                charged: Bool = true) async throws(StorageError) -> [ShardResponse] {
        var pending = Dictionary(grouping: groups.joined(), by: \.id).values.map { $0[0] }.sorted { $0.id < $1.id }
        let cost = RateCost.read(request)
        let restrictions = routing.resharding == nil ? [:] : holder.readRestrictions()
        let request = restrictions.isEmpty ? request : .owned(request, restrictions)
        if charged && cost > 0 { try charge(.read, Dictionary(uniqueKeysWithValues: pending.map { ($0.id, cost) })) }
        if consistency != .default { return try await fanOutConsistent(request, pending, consistency) }
        // The replicas that serve reads, per shard, as this peer sees them now.
        var readable: [UInt32: Set<UInt64>] = [:]
        func see(_ shards: [ShardInfo]) {
            for shard in shards {
                let set = replicaSet(shard)
                readable[shard.id] = Set(shard.peers.filter(set.isReadable))
            }
        }
        see(pending)
        var failed: Set<UInt64> = []
        var responses: [ShardResponse] = []
        var reroutes = 0
        while !pending.isEmpty {
            let plan = try assign(pending, readable: readable, excluding: failed)
            let round = await run(plan, request, readable: readable, failed: failed)
            if let error = round.error {
                // A replica that moved away: once this peer has applied the move, its shards are
                // asked again of the replicas they have now (twice at most).
                let ids = Set(pending.map(\.id))
                guard error.isShardNotHere, reroutes < 2, await layoutChanges(ids, from: pending) else { throw error }
                reroutes += 1
                pending = layout.filter { ids.contains($0.id) }
                see(pending)
                continue
            }
            responses += round.responses
            failed.formUnion(round.failed)
            pending = layout.filter { round.retry.contains($0.id) }
            let lost = pending.filter { readable[$0.id, default: []].isSubset(of: failed) }.map(\.id)
            if !lost.isEmpty { throw .unavailable("no replica of shards \(lost) of collection `\(name)` answered: \(round.lastFailure)") }
        }
        return responses
    }

    private struct ReadRound {
        var responses: [ShardResponse] = []
        var failed: Set<UInt64> = []
        /// Shards none of whose asked replicas answered.
        var retry: Set<UInt32> = []
        var lastFailure = ""
        /// An error that ends the read (the request's own fault, or its timeout).
        var error: StorageError?
    }

    private enum ReadEvent: Sendable {
        case answer(call: Int, attempt: Int, peer: UInt64, Result<ShardResponse, StorageError>)
        case slow
    }

    /// One round of a read: the calls of `plan` at once, each with `read_fan_out_factor` other
    /// replicas of its shards asked in parallel from the start; and after `slowAfter`, the shards
    /// of each remote call still unanswered asked of other replicas as well (a hedge). A call is
    /// over when one of its attempts has answered for all its shards.
    private func run(_ plan: [UInt64: [UInt32]], _ request: ShardRequest, readable: [UInt32: Set<UInt64>],
                     failed: Set<UInt64>) async -> ReadRound {
        /// The call itself (attempt 0), or the same shards asked of other replicas.
        struct Attempt {
            var peers: [UInt64: [UInt32]]
            var answers: [ShardResponse] = []
            var failed = false
        }
        struct Call {
            let peer: UInt64
            let shards: [UInt32]
            var attempts: [Attempt]
            var done = false
            var asked: Set<UInt64> { Set(attempts.flatMap(\.peers.keys)) }
        }
        var round = ReadRound()
        let fanOut = Int(config.params.readFanOutFactor ?? 0)
        if fanOut == 0, plan.count == 1, let (peer, shardIDs) = plan.first, isLocal(peer) {
            // Only this peer's replicas, asked once: no tasks to start or wait for.
            switch await ask(peer, shardIDs, request) {
            case .success(let response): round.responses = [response]
            case .failure(let error):
                if case .timeout = error { round.error = Self.readTimedOut(error) } else { round.error = error }
            }
            return round
        }
        var calls = plan.sorted { $0.key < $1.key }.map { Call(peer: $0.key, shards: $0.value, attempts: [Attempt(peers: [$0.key: $0.value])]) }
        // The collection's `read_fan_out_delay_ms` when set, else the network's call timeout.
        let slowAfter = config.params.readFanOutDelayMs.map { Duration.milliseconds(Int64($0)) } ?? network?.slowAfter ?? .seconds(1)
        await withTaskGroup(of: ReadEvent.self) { group in
            for index in calls.indices {
                for attempt in 0...fanOut {
                    if attempt > 0 {
                        guard let peers = hedgePlan(calls[index].shards, readable: readable,
                                                    excluding: failed.union(calls[index].asked)) else { break }
                        calls[index].attempts.append(Attempt(peers: peers))
                    }
                    for (peer, shardIDs) in calls[index].attempts[attempt].peers {
                        group.addTask { .answer(call: index, attempt: attempt, peer: peer, await self.ask(peer, shardIDs, request)) }
                    }
                }
            }
            if calls.contains(where: { !isLocal($0.peer) }) {
                group.addTask {
                    try? await Task.sleep(for: slowAfter)
                    return .slow
                }
            }
            var open = calls.count
            while open > 0, let event = await group.next() {
                switch event {
                case .slow:
                    for index in calls.indices where !calls[index].done && !calls[index].attempts[0].failed && !isLocal(calls[index].peer) {
                        guard let peers = hedgePlan(calls[index].shards, readable: readable,
                                                    excluding: failed.union(round.failed).union(calls[index].asked)) else { continue }
                        network?.noteSlow(calls[index].peer)
                        calls[index].attempts.append(Attempt(peers: peers))
                        let attempt = calls[index].attempts.count - 1
                        for (peer, shardIDs) in peers {
                            group.addTask { .answer(call: index, attempt: attempt, peer: peer, await self.ask(peer, shardIDs, request)) }
                        }
                    }
                case .answer(let index, let attempt, let peer, let outcome):
                    guard !calls[index].done, !calls[index].attempts[attempt].failed else { continue }
                    switch outcome {
                    case .success(let response):
                        calls[index].attempts[attempt].answers.append(response)
                        if calls[index].attempts[attempt].answers.count == calls[index].attempts[attempt].peers.count {
                            round.responses += calls[index].attempts[attempt].answers
                            calls[index].done = true
                        }
                    case .failure(let error):
                        if attempt == 0, case .timeout = error {
                            round.error = Self.readTimedOut(error)
                            open = 0
                            continue
                        }
                        // Another replica is asked when this one is unreachable or failed on its side;
                        // any other failure of the call itself is the request's.
                        let message = isLocal(peer) ? nil : error.replicaFailure
                        if attempt == 0, message == nil {
                            round.error = error
                            open = 0
                            continue
                        }
                        if let message {
                            round.failed.insert(peer)
                            round.lastFailure = message
                        }
                        calls[index].attempts[attempt].failed = true
                        if calls[index].attempts.allSatisfy(\.failed) {
                            round.retry.formUnion(calls[index].shards)
                            calls[index].done = true
                        }
                    }
                    if calls[index].done { open -= 1 }
                }
            }
            group.cancelAll()
        }
        return round
    }

    /// As Qdrant reports a read whose replica timed out.
    private static func readTimedOut(_ error: StorageError) -> StorageError {
        .serviceError("1 of 1 read operations failed:\n  \(error)")
    }

    /// Where to ask `shards` again, on replicas not `excluding`; nil when no replica is left.
    private func hedgePlan(_ shards: [UInt32], readable: [UInt32: Set<UInt64>], excluding: Set<UInt64>) -> [UInt64: [UInt32]]? {
        try? assign(layout.filter { shards.contains($0.id) }, readable: readable, excluding: excluding)
    }

    /// Peer → shards it answers for: local replicas first, then the peer covering most of the
    /// remaining shards (ties by peer id), so a request costs as few calls as possible. Peers that
    /// failed or were slow lately are asked only for shards no other replica can answer.
    private func assign(_ shards: [ShardInfo], readable: [UInt32: Set<UInt64>],
                        excluding failed: Set<UInt64>) throws(StorageError) -> [UInt64: [UInt32]] {
        var plan: [UInt64: [UInt32]] = [:]
        var remaining: [ShardInfo] = []
        for shard in shards {
            if readable[shard.id, default: []].subtracting(failed).contains(where: isLocal) {
                plan[peerID, default: []].append(shard.id)
            } else {
                remaining.append(shard)
            }
        }
        func candidates(_ shard: ShardInfo) -> Set<UInt64> {
            let all = readable[shard.id, default: []].subtracting(failed)
            let responsive = all.filter { network?.isResponsive($0) ?? true }
            return responsive.isEmpty ? all : responsive
        }
        while !remaining.isEmpty {
            var cover: [UInt64: Int] = [:]
            for shard in remaining {
                for peer in candidates(shard) { cover[peer, default: 0] += 1 }
            }
            guard let best = cover.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else {
                throw .unavailable("no replica of shard \(remaining[0].id) of collection `\(name)` is reachable")
            }
            let covered = Set(remaining.filter { candidates($0).contains(best) }.map(\.id))
            plan[best, default: []] += remaining.filter { covered.contains($0.id) }.map(\.id)
            remaining.removeAll { covered.contains($0.id) }
        }
        return plan
    }

    /// A read with a `consistency` other than the default: each shard is read from as many of its
    /// readable replicas as the consistency requires (this peer's first, then the others from the
    /// shard's position on), one call per replica, trying another replica when one fails
    /// transiently; the replicas' answers are combined as Qdrant combines them (an item stays when
    /// enough replicas returned it equal; counts take the minimum or the median).
    func fanOutConsistent(_ request: ShardRequest, _ shards: [ShardInfo],
                          _ consistency: ReadConsistency) async throws(StorageError) -> [ShardResponse] {
        var resolved: [ShardResponse] = []
        for shard in shards.sorted(by: { $0.id < $1.id }) {
            let set = replicaSet(shard)
            let others = set.peers.filter { $0 != peerID }
            var rotation: [UInt64] = others
            if !others.isEmpty {
                let start = Int(shard.id) % others.count
                rotation = Array(others[start...]) + Array(others[..<start])
            }
            let plan = try set.readPlan(consistency, order: rotation)
            var answers: [ShardResponse] = []
            var errors: [String] = []
            var next = 0
            // The first batch asks `read_fan_out_factor` more replicas than it needs answers from.
            var extra = Int(config.params.readFanOutFactor ?? 0)
            while answers.count < plan.required {
                let wanted = plan.required - answers.count
                guard plan.candidates.count - next >= wanted else {
                    throw .serviceError("\(errors.count) of \(plan.candidates.count) read operations failed:\n" + errors.joined(separator: "\n"))
                }
                let batch = Array(plan.candidates[next..<min(plan.candidates.count, next + wanted + extra)])
                next += batch.count
                extra = 0
                let outcomes = await withTaskGroup(of: Result<ShardResponse, StorageError>.self) { group in
                    for peer in batch { group.addTask { await self.ask(peer, [shard.id], request) } }
                    var all: [Result<ShardResponse, StorageError>] = []
                    var answered = 0
                    for await outcome in group {
                        all.append(outcome)
                        if case .success = outcome { answered += 1 }
                        if answered == wanted { break }
                    }
                    group.cancelAll()
                    return all
                }
                for outcome in outcomes {
                    switch outcome {
                    case .success(let response): answers.append(response)
                    case .failure(let error):
                        guard let message = error.replicaFailure else { throw error }
                        errors.append(message)
                    }
                }
            }
            resolved.append(Self.resolve(answers, plan.resolution))
        }
        return resolved
    }

    /// Several replicas' answers to one shard's read, combined by `resolution`.
    static func resolve(_ answers: [ShardResponse], _ resolution: ReadResolution) -> ShardResponse {
        guard answers.count > 1, let first = answers.first else { return answers.first ?? .records([]) }
        func keyed<Item: Encodable>(_ lists: [[Item]]) -> [Item] {
            // Items are equal when their wire forms are: id, score, version, payload and vectors alike.
            let keys = lists.map { list in list.map { (try? JSONValueEncoder().encodeBytes($0)) ?? [] } }
            var byKey: [[UInt8]: Item] = [:]
            for (list, listKeys) in zip(lists, keys) { for (item, key) in zip(list, listKeys) where byKey[key] == nil { byKey[key] = item } }
            return resolution.resolve(keys).map { byKey[$0]! }
        }
        switch first {
        case .records:
            return .records(keyed(answers.map { if case .records(let r) = $0 { r } else { [] } }))
        case .points:
            return .points(keyed(answers.map { if case .points(let p) = $0 { p } else { [] } }))
        case .count:
            return .count(resolution.resolve(counts: answers.map { if case .count(let n) = $0 { n } else { 0 } }))
        case .facets:
            let lists: [[FacetCount]] = answers.map { if case .facets(let f) = $0 { f } else { [] } }
            let values: [JSONValue] = resolution.resolve(lists.map { list in list.map(\.value) })
            return .facets(values.map { value in
                let counts: [Int] = lists.compactMap { list in list.first { $0.value == value }?.count }
                return FacetCount(value: value, count: resolution.resolve(counts: counts))
            })
        case .sparseStatistics:
            // Statistics of a shard are the same on every replica that is in sync: any one counts.
            return first
        case .vector, .clocks:
            return first
        }
    }

    // MARK: Local reads

    /// Runs `request` on local shards `ids` (for this peer's part of a fan-out, another peer's call,
    /// or the local shard API), merging their answers as the whole collection would.
    public func runLocal(_ request: ShardRequest, shards ids: [UInt32]) async throws(StorageError) -> ShardResponse {
        if case .transferTarget(let transfer) = request {
            // 1 once the transfer, the replica's state for it and its shard are all in place here.
            // (A transfer into another shard leaves its replica's state as it is.)
            let id = transfer.targetShard
            let state = layout.first { $0.id == id }?.state(of: peerID)
            let known = transfers.contains { $0.key == transfer.key && $0.started == transfer.started }
            let ready = transfer.isCrossShard ? state?.isUpdatable == true : state == transfer.targetState
            return .count(known && ready && shards[id] != nil ? 1 : 0)
        }
        if case .owned(let inner, let conditions) = request {
            var answers: [ShardResponse] = []
            for id in ids.sorted() { answers.append(try await runLocal(inner.restricted(to: conditions[id]), shards: [id])) }
            return combine(answers, of: inner)
        }
        var targets: [LocalShard] = []
        for id in ids.sorted() {
            guard let shard = shards[id] else { throw .shardNotHere(id, collection: name, peer: peerID) }
            targets.append(shard)
        }
        switch request {
        case .retrieve(let pointIDs, let withPayload, let withVector):
            var records: [PointRecord] = []
            for shard in targets { records += await shard.retrieve(pointIDs, withPayload: withPayload, withVector: withVector) }
            return .records(records)
        case .scroll(let offset, let limit, let filter, let withPayload, let withVector):
            let filter = try prepare(filter)
            var pages: [[PointRecord]] = []
            for shard in targets {
                pages.append(await shard.scroll(from: offset, limit: limit, filter: filter, withPayload: withPayload, withVector: withVector))
            }
            return .records(Self.mergeByID(pages, limit: limit))
        case .scrollOrdered(let orderBy, let limit, let filter, let withPayload, let withVector):
            let filter = try prepare(filter)
            var pages: [[PointRecord]] = []
            for shard in targets {
                pages.append(await shard.scroll(orderedBy: orderBy, filter: filter, limit: limit, withPayload: withPayload, withVector: withVector))
            }
            return .records(Self.mergeByValue(pages, orderBy: orderBy, limit: limit))
        case .count(let filter):
            let filter = try prepare(filter)
            var total = 0
            for shard in targets { total += await shard.count(filter: filter) }
            return .count(total)
        case .indexedVectors:
            var total = 0
            for shard in targets { total += await shard.indexedVectorCount }
            return .count(total)
        case .search(let search):
            return .points(try await searchLocal(search, targets))
        case .facet(let key, let filter):
            let filter = try prepare(filter)
            guard let type = payloadSchema[key]?.type else { return .facets([]) }
            var counts: [JSONValue: Int] = [:]
            for shard in targets {
                for (value, count) in await shard.facetCounts(key, type: type, filter: filter) { counts[value, default: 0] += count }
            }
            return .facets(counts.map { FacetCount(value: $0.key, count: $0.value) })
        case .vector(let id, let name):
            for shard in targets {
                if let vector = await shard.vector(of: id, name: name) { return .vector(vector) }
            }
            return .vector(nil)
        case .sparseStatistics(let name, let indices, let filter):
            let filter = try prepare(filter)
            var total = SparseStatistics()
            for shard in targets { total.add(await shard.sparseStatistics(name, indices: indices, filter: filter)) }
            return .sparseStatistics(total)
        case .transferTarget, .owned:
            return .count(0)
        case .recoveryPoint:
            guard let shard = targets.first else { throw .badRequest("a recovery point is of one shard") }
            return .clocks(await shard.recoveryPoint)
        }
    }

    // MARK: Merging

    /// The answers of single shards to `request` merged as ``runLocal(_:shards:)`` merges shards.
    private func combine(_ answers: [ShardResponse], of request: ShardRequest) -> ShardResponse {
        let pages = Self.records(answers)
        switch request {
        case .scroll(_, let limit, _, _, _): return .records(Self.mergeByID(pages, limit: limit))
        case .scrollOrdered(let orderBy, let limit, _, _, _): return .records(Self.mergeByValue(pages, orderBy: orderBy, limit: limit))
        case .count, .indexedVectors: return .count(answers.reduce(0) { if case .count(let n) = $1 { $0 + n } else { $0 } })
        case .search(let search):
            let lists: [[ScoredPoint]] = answers.map { if case .points(let points) = $0 { points } else { [] } }
            let higherIsBetter = higherIsBetter(search)
            return .points(Self.mergeByScore(lists, higherIsBetter: higherIsBetter, limit: search.limit))
        case .facet:
            var counts: [JSONValue: Int] = [:]
            for case .facets(let list) in answers { for entry in list { counts[entry.value, default: 0] += entry.count } }
            return .facets(counts.map { FacetCount(value: $0.key, count: $0.value) })
        case .vector:
            for case .vector(let vector?) in answers { return .vector(vector) }
            return .vector(nil)
        case .sparseStatistics:
            var total = SparseStatistics()
            for case .sparseStatistics(let part) in answers { total.add(part) }
            return .sparseStatistics(total)
        case .retrieve, .transferTarget, .recoveryPoint, .owned:
            return .records(Array(pages.joined()))
        }
    }

    /// Pages in id order merged into one, cut to `limit` (a point under several shard keys once).
    static func mergeByID(_ pages: [[PointRecord]], limit: Int) -> [PointRecord] {
        var seen = Set<PointID>()
        return Array(pages.joined().sorted { $0.id < $1.id }.filter { seen.insert($0.id).inserted }.prefix(limit))
    }

    static func mergeByValue(_ pages: [[PointRecord]], orderBy: OrderBy, limit: Int) -> [PointRecord] {
        let sorted = pages.joined().sorted { a, b in
            let x = a.orderValue?.doubleValue ?? 0, y = b.orderValue?.doubleValue ?? 0
            return x != y ? (orderBy.descending ? x > y : x < y) : a.id < b.id
        }
        return Array(sorted.prefix(limit))
    }

    static func mergeByScore(_ lists: [[ScoredPoint]], higherIsBetter: Bool, limit: Int) -> [ScoredPoint] {
        let before = { (a: ScoredPoint, b: ScoredPoint) in
            a.score != b.score ? (higherIsBetter ? a.score > b.score : a.score < b.score) : a.id < b.id
        }
        // One shard's list (a single-shard collection): already in order, each point once.
        if lists.count == 1, zip(lists[0], lists[0].dropFirst()).allSatisfy({ before($0, $1) }) {
            return Array(lists[0].prefix(limit))
        }
        let sorted = lists.joined().sorted(by: before)
        var seen = Set<PointID>()
        return Array(sorted.filter { seen.insert($0.id).inserted }.prefix(limit))
    }

    static func records(_ responses: [ShardResponse]) -> [[PointRecord]] {
        responses.map { if case .records(let records) = $0 { records } else { [] } }
    }

    // MARK: Reads

    public func retrieve(_ ids: [PointID], withPayload: WithPayload, withVector: WithVector, shardKey: ShardKeySelector? = nil,
                         consistency: ReadConsistency = .default) async throws(StorageError) -> [PointRecord] {
        let groups = try scope(shardKey, write: false)
        let holder = holder
        let touched = Set(ids.flatMap { holder.targets(of: $0, in: groups).map(\.id) })
        let responses = try await fanOut(.retrieve(ids: ids, withPayload: withPayload, withVector: withVector),
                                         [layout.filter { touched.contains($0.id) }], consistency: consistency)
        return Self.inRequestOrder(ids, Self.records(responses).joined())
    }

    /// Records in the order of `ids`, each id once (the first record found for it).
    public static func inRequestOrder(_ ids: [PointID], _ records: some Sequence<PointRecord>) -> [PointRecord] {
        var found: [PointID: PointRecord] = [:]
        for record in records where found[record.id] == nil { found[record.id] = record }
        var seen = Set<PointID>()
        return ids.compactMap { id in seen.insert(id).inserted ? found[id] : nil }
    }

    /// The first `limit` of up to `limit + 1` records in id order, and the id that starts the next page.
    public static func page(_ records: [PointRecord], limit: Int) -> ([PointRecord], PointID?) {
        (Array(records.prefix(limit)), records.count > limit ? records[limit].id : nil)
    }

    /// A page of points in id order from `offset`, and the id that starts the next page.
    public func scroll(from offset: PointID?, limit: Int, filter: Filter? = nil, withPayload: WithPayload, withVector: WithVector,
                       shardKey: ShardKeySelector? = nil, consistency: ReadConsistency = .default) async throws(StorageError) -> ([PointRecord], PointID?) {
        let groups = try scope(shardKey, write: false)
        _ = try prepare(filter)
        let responses = try await fanOut(.scroll(offset: offset, limit: limit + 1, filter: filter, withPayload: withPayload,
                                                 withVector: withVector), groups, consistency: consistency)
        return Self.page(Self.mergeByID(Self.records(responses), limit: limit + 1), limit: limit)
    }

    public func count(filter: Filter? = nil, shardKey: ShardKeySelector? = nil,
                      consistency: ReadConsistency = .default) async throws(StorageError) -> Int {
        let groups = try scope(shardKey, write: false)
        _ = try prepare(filter)
        return try await fanOut(.count(filter: filter), groups, consistency: consistency).reduce(0) { total, response in
            if case .count(let n) = response { total + n } else { total }
        }
    }

    /// How many vectors the collection holds in vector indexes, over every shard (one replica of each).
    public func indexedVectorCount() async throws(StorageError) -> Int {
        try await fanOut(.indexedVectors, try scope(nil, write: false), consistency: .default).reduce(0) { total, response in
            if case .count(let n) = response { total + n } else { total }
        }
    }

    /// The collection's stored sizes, estimated as Qdrant does: this peer's shards, scaled to the
    /// number of shards in the collection (exact on a single node). Payload bytes as `payloads` asks.
    public func storedSizes(payloads: PayloadSizing) async -> StoredSizes {
        var total = StoredSizes()
        for shard in shards.values {
            let sizes = await shard.storedSizes(payloads: payloads)
            total.points += sizes.points
            total.vectorBytes += sizes.vectorBytes
            total.payloadBytes += sizes.payloadBytes
        }
        guard !shards.isEmpty, layout.count > shards.count else { return total }
        let scale = Double(layout.count) / Double(shards.count)
        total.points = Int(Double(total.points) * scale)
        total.vectorBytes = Int(Double(total.vectorBytes) * scale)
        total.payloadBytes = Int(Double(total.payloadBytes) * scale)
        return total
    }

    /// The stored vector `name` of point `id` as a query (dense, sparse or multi), or nil when the
    /// point (or that vector) is missing.
    public func vector(of id: PointID, name: String, shardKey: ShardKeySelector? = nil) async throws(StorageError) -> QueryInput? {
        let shardIDs = Set(holder.targets(of: id, in: try scope(shardKey, write: false)).map(\.id))
        for case .vector(let vector?) in try await fanOut(.vector(id: id, name: name), [layout.filter { shardIDs.contains($0.id) }]) {
            return vector
        }
        return nil
    }

    /// `GET /collections/{c}/cluster` as this peer sees it.
    public func clusterInfo() async -> CollectionClusterInfo {
        var local: [CollectionClusterInfo.Local] = []
        var remote: [CollectionClusterInfo.Remote] = []
        for shard in layout {
            for peer in shard.peers {
                if isLocal(peer), let held = shards[shard.id] {
                    local.append(.init(shardID: shard.id, shardKey: shard.key, pointsCount: await held.pointCount, state: shard.state(of: peer)))
                } else if !isLocal(peer) {
                    remote.append(.init(shardID: shard.id, shardKey: shard.key, peerID: peer, state: shard.state(of: peer)))
                }
            }
        }
        let resharding = routing.resharding.map { [ReshardingInfo(direction: $0.direction, shardID: $0.shard, peerID: $0.peer, shardKey: $0.key)] }
        return CollectionClusterInfo(peerID: peerID, shardCount: layout.count, localShards: local, remoteShards: remote,
                                     shardTransfers: transferInfo, reshardingOperations: resharding)
    }

    /// Shards for a new shard key, placed over `peers` (continuing the shard ids) with the request's
    /// numbers or the collection's.
    public func placeShardKey(_ request: CreateShardingKey, peers: [UInt64]) -> [ShardInfo] {
        ShardPlacement.place(count: Int(request.shardsNumber ?? config.params.shardNumber),
                             replicas: Int(request.replicationFactor ?? config.params.replicationFactor), peers: peers,
                             firstID: layout.map { $0.id + 1 }.max() ?? 0, key: request.shardKey, existing: layout)
    }

    /// The collection's shard keys, or nil under automatic sharding.
    public var shardKeys: [ShardKey]? {
        guard config.params.shardingMethod == .custom else { return nil }
        var keys: [ShardKey] = []
        for shard in layout { if let key = shard.key, !keys.contains(key) { keys.append(key) } }
        return keys
    }
}
