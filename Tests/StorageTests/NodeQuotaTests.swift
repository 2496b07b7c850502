import DiskIO
import Foundation
import QuiverJSON
import QuiverModel
@testable import Storage
import QuiverTesting
import Synchronization
import Testing

/// Memory figures a test sets.
final class FixedMemory: MemoryGauge {
    private let figures = Mutex<(resident: UInt64?, total: UInt64?)>((nil, 1000))
    func set(resident: UInt64?, total: UInt64? = 1000) { figures.withLock { $0 = (resident, total) } }
    func residentBytes() -> UInt64? { figures.withLock { $0.resident } }
    func totalBytes() -> UInt64? { figures.withLock { $0.total } }
}

@Suite struct NodeQuotaTests {
    let capacity: UInt64 = 1000 << 20

    /// A disk of 1000 MiB with `percent` of it used.
    func disk(used percent: UInt64) -> FaultyDisk {
        let disk = FaultyDisk()
        disk.setCapacityBytes(capacity)
        disk.setAvailableBytes(capacity - capacity * percent / 100)
        return disk
    }

    func quota(_ disk: FaultyDisk, memory: FixedMemory = FixedMemory(), file: String? = nil) throws -> NodeQuota {
        try NodeQuota(storagePath: NSTemporaryDirectory(), disk: disk, memory: memory, file: file, maxAge: .zero)
    }

    @Test func aResourceAtItsLimitIsRefusedUntilItFallsTheMarginBelow() throws {
        let disk = disk(used: 89)
        let quota = try quota(disk)
        quota.configure(QuotaConfig(enabled: true, maxDiskUsagePercent: 90))
        #expect(quota.refusal() == nil)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: nil, diskUsage: false))
        disk.setAvailableBytes(capacity / 10)  // 90% used
        let refusal = try #require(quota.refusal())
        #expect(refusal.hasPrefix("Disk usage is at 90% of total capacity, exceeding the configured limit of 90%. Help: "))
        disk.setAvailableBytes(capacity - capacity * 87 / 100)
        #expect(quota.refusal()?.contains("is at 87% of total capacity. It reached the configured limit of 90% and must fall below 85%") == true)
        #expect(quota.exceeded().diskUsage == true)
        disk.setAvailableBytes(capacity - capacity * 84 / 100)
        #expect(quota.refusal() == nil)
        #expect(quota.peerUsage() == PeerQuotaUsage(exceeded: false, usage: QuotaUsage(residentMemoryPercent: nil, diskUsagePercent: 84)))
    }

    @Test func aZeroMarginReleasesJustUnderTheLimitAndPercentsRoundDown() throws {
        let disk = FaultyDisk()
        disk.setCapacityBytes(1000)
        disk.setAvailableBytes(1000 - 505)  // 50.5%: counts as 50
        let memory = FixedMemory()
        let quota = try quota(disk, memory: memory)
        quota.configure(QuotaConfig(enabled: true, maxResidentMemoryPercent: 60, maxDiskUsagePercent: 50, releaseMarginPercent: 0))
        #expect(quota.refusal()?.hasPrefix("Disk usage is at 50%") == true)
        disk.setAvailableBytes(1000 - 499)
        #expect(quota.refusal() == nil)
        memory.set(resident: 600)
        #expect(quota.refusal()?.hasPrefix("Resident memory usage is at 60% of total memory, exceeding the configured limit of 60%") == true)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: true, diskUsage: false))
        // Each resource is checked whatever the other says: the disk's release is noticed while
        // memory still refuses.
        disk.setAvailableBytes(1000 - 600)
        #expect(quota.refusal()?.hasPrefix("Resident memory") == true)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: true, diskUsage: true))
        disk.setAvailableBytes(1000 - 100)
        #expect(quota.refusal()?.hasPrefix("Resident memory") == true)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: true, diskUsage: false))
        // More than the whole counts as all of it.
        memory.set(resident: 5000)
        #expect(quota.usage().residentMemoryPercent == 100)
    }

    @Test func limitsAreOnlyEnforcedWhenEnabledSetAndMeasurable() throws {
        let memory = FixedMemory()
        let quota = try quota(disk(used: 99), memory: memory)
        #expect(quota.config == QuotaConfig())
        #expect(quota.refusal() == nil)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: nil, diskUsage: nil))
        quota.configure(QuotaConfig(enabled: false, maxDiskUsagePercent: 10))
        #expect(quota.refusal() == nil)
        quota.configure(QuotaConfig(enabled: true, maxResidentMemoryPercent: 10))
        // Memory it cannot read is not enforced (and not reported as within its limit).
        #expect(quota.refusal() == nil)
        #expect(quota.exceeded() == QuotaExceeded(residentMemory: nil, diskUsage: nil))
        #expect(quota.usage() == QuotaUsage(residentMemoryPercent: nil, diskUsagePercent: 99))
        memory.set(resident: 500)
        #expect(quota.refusal()?.contains("`max_resident_memory_percent`") == true)
        // A new configuration clears what tripped.
        quota.configure(QuotaConfig(enabled: true, maxResidentMemoryPercent: 51))
        #expect(quota.refusal() == nil)
    }

    @Test func updatesThatAddDataAreRefusedOverAQuotaButDeletesAreNot() async throws {
        let storage = TempStorage()
        let disk = FaultyDisk()
        let memory = FixedMemory()
        let quota = try quota(disk, memory: memory)
        let toc = try await storage.open(disk: disk, quota: quota)
        try await toc.createCollection("c", request(#"{"vectors":{"size":4,"distance":"Dot"}}"#))
        let collection = try await toc.collection("c")
        let points: [PointStruct] = (0..<10).map { PointStruct(id: .number(UInt64($0)), vectors: ["": [1, 2, 3, Float($0)]]) }
        _ = try await collection.update(PointsUpdate(.upsert(points)), wait: true)
        quota.configure(QuotaConfig(enabled: true, maxResidentMemoryPercent: 50))
        memory.set(resident: 700)
        for operation: UpdateOperation in [.upsert(points), .setPayload([.number(1)], payload: JSONObject([("a", .int(1))]), key: nil), .clearPayload([.number(1)]),
                                           .deleteVectors([.number(1)], names: [""])] {
            await #expect(throws: StorageError.insufficientStorage(quota.refusal()!)) {
                _ = try await collection.update(PointsUpdate(operation), wait: true)
            }
        }
        _ = try await collection.update(PointsUpdate(.delete([.number(3)])), wait: true)
        #expect(try await toc.collectionInfo("c").pointsCount == 9)
        memory.set(resident: 100)
        _ = try await collection.update(PointsUpdate(.upsert(points)), wait: true)
        #expect(try await toc.collectionInfo("c").pointsCount == 10)
    }

    @Test func aSingleNodeKeepsItsQuotaInAFile() throws {
        let storage = TempStorage()
        try PosixDisk().createDirectories(storage.path)
        let file = joinPath(storage.path, "quota.json")
        let config = QuotaConfig(enabled: true, maxDiskUsagePercent: 80, releaseMarginPercent: 2)
        try quota(disk(used: 10), file: file).store(config)
        #expect(String(decoding: try PosixDisk().readFile(file), as: UTF8.self) == #"{"enabled":true,"max_disk_usage_percent":80,"release_margin_percent":2}"#)
        #expect(try quota(disk(used: 10), file: file).config == config)
        try PosixDisk().writeFileAtomically(file, Array(#"{"enabled":true,"max_disk_usage_percent":0}"#.utf8))
        #expect(throws: StorageError.self) { try quota(disk(used: 10), file: file) }
    }

    @Test func aClusterTakesItsQuotaFromTheCatalogue() throws {
        var state = ClusterMetadata()
        let config = QuotaConfig(enabled: true, maxResidentMemoryPercent: 70)
        #expect(state.apply(.setQuota(config)) == .success(true))
        let bytes = try JSONValueEncoder().encodeBytes(state)
        #expect(try JSONValueDecoder().decode(ClusterMetadata.self, from: bytes).quota == config)
        // A catalogue from before quotas reads as having none.
        state.quota = nil
        let older = try JSONValueEncoder().encodeBytes(state)
        #expect(!String(decoding: older, as: UTF8.self).contains("quota"))
        #expect(try JSONValueDecoder().decode(ClusterMetadata.self, from: older).quota == nil)
    }

    @Test func theConfigurationValidatesAndLeavesUnsetLimitsOut() throws {
        let decoded = try JSONValueDecoder().decode(QuotaConfig.self, from: Array(#"{"max_disk_usage_percent":0,"release_margin_percent":101,"other":1}"#.utf8))
        #expect(decoded.enabled == false)
        #expect(throws: ValidationErrors.self) { try decoded.validated() }
        do {
            _ = try decoded.validated()
        } catch {
            #expect(error.rendered == "[max_disk_usage_percent: value 0 invalid, must be from 1 to 100; release_margin_percent: value 101 invalid, must be 100 or smaller]")
        }
        #expect(throws: JSONDecodingError.self) { try JSONValueDecoder().decode(QuotaConfig.self, from: Array(#"{"max_disk_usage_percent":256}"#.utf8)) }
        #expect(String(decoding: try JSONValueEncoder().encodeBytes(QuotaConfig()), as: UTF8.self) == #"{"enabled":false}"#)
        let status = QuotaStatus(config: QuotaConfig(), usage: QuotaUsage(residentMemoryPercent: nil, diskUsagePercent: 3), peers: nil)
        #expect(String(decoding: try JSONValueEncoder().encodeBytes(status), as: UTF8.self)
                    == #"{"config":{"enabled":false},"usage":{"resident_memory_percent":null,"disk_usage_percent":3}}"#)
        let peer = PeerQuotaUsage(exceeded: true, usage: QuotaUsage(residentMemoryPercent: 4, diskUsagePercent: 5))
        #expect(try JSONValueDecoder().decode(PeerQuotaUsage.self, from: try JSONValueEncoder().encodeBytes(peer)) == peer)
    }
}
