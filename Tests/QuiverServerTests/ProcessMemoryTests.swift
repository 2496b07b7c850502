@testable import QuiverServer
import Testing

@Suite struct ProcessMemoryTests {
    @Test func readsKilobyteFieldsOfProcFiles() {
        let status = "Name:\tquiver\nVmRSS:\t    1988 kB\nRssAnon:\t     148 kB\nRssFile:\t    1840 kB\n"
        #expect(ProcessMemory.kilobytes(field: "RssAnon:", in: status) == 148 * 1024)
        #expect(ProcessMemory.kilobytes(field: "RssShmem:", in: status) == nil)
        #expect(ProcessMemory.kilobytes(field: "MemTotal:", in: "MemTotal:       24683792 kB\nMemFree: 1 kB\n") == 24_683_792 * 1024)
    }

    #if os(Linux)
    @Test func thisProcessHasResidentMemoryWithinWhatItMayUse() throws {
        let memory = ProcessMemory()
        let resident = try #require(memory.residentBytes())
        let total = try #require(memory.totalBytes())
        let machine = try #require(ProcessMemory.read("/proc/meminfo").flatMap { ProcessMemory.kilobytes(field: "MemTotal:", in: $0) })
        #expect(resident > 0 && resident < total)
        #expect(total <= machine)
        // A cgroup limit, where one applies, is what the total is.
        if let least = ProcessMemory.cgroupLimits().min(), least < machine { #expect(total == least) }
    }
    #endif
}
