#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `storage/.lock`, held for the life of the process, so two nodes never
/// open the same storage directory. The kernel releases it when the process dies, even by kill -9.
final class StorageLock: Sendable {
    let fd: Int32

    init(directory: String) throws(ConfigError) {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ConfigError("storage directory \(directory) is in use by another process (lock \(path) is held)")
        }
        self.fd = fd
    }

    deinit {
        close(fd)
    }
}
