import DiskIO
import Synchronization

/// A `PosixDisk` that fails chosen operations, for testing what storage does when IO breaks.
final class FaultyDisk: Disk {
    enum Operation: Sendable { case writeFile, rename, syncDirectory, removeItem }

    private let real = PosixDisk()
    private let failing = Mutex<Set<String>>([])

    /// Makes every `operation` whose path contains `pathFragment` fail with EIO.
    func fail(_ operation: Operation, whenPathContains pathFragment: String) {
        failing.withLock { $0.insert("\(operation)|\(pathFragment)") }
    }

    func heal() { failing.withLock { $0.removeAll() } }

    private func check(_ operation: Operation, _ path: String) throws(DiskError) {
        let rules = failing.withLock { $0 }
        for rule in rules {
            let parts = rule.split(separator: "|", maxSplits: 1).map(String.init)
            if parts[0] == "\(operation)" && path.contains(parts[1]) {
                throw DiskError(operation: "\(operation)", path: path, errno: 5, reason: "Input/output error (injected)")
            }
        }
    }

    func createDirectory(_ path: String) throws(DiskError) { try real.createDirectory(path) }
    func fileExists(_ path: String) -> Bool { real.fileExists(path) }
    func isDirectory(_ path: String) -> Bool { real.isDirectory(path) }
    func listDirectory(_ path: String) throws(DiskError) -> [String] { try real.listDirectory(path) }
    func readFile(_ path: String) throws(DiskError) -> [UInt8] { try real.readFile(path) }
    func writeFile(_ path: String, _ bytes: [UInt8]) throws(DiskError) {
        try check(.writeFile, path)
        try real.writeFile(path, bytes)
    }
    func rename(_ from: String, _ to: String) throws(DiskError) {
        try check(.rename, from)
        try real.rename(from, to)
    }
    func removeItem(_ path: String) throws(DiskError) {
        try check(.removeItem, path)
        try real.removeItem(path)
    }
    func syncDirectory(_ path: String) throws(DiskError) {
        try check(.syncDirectory, path)
        try real.syncDirectory(path)
    }
}
