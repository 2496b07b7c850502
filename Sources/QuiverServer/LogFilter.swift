public import Logging

/// Qdrant's log filter syntax: a default level, then `target=level` overrides, comma-separated —
/// `INFO,raft=warn,quiver.storage=debug`. A target matches a logger label equal to it or starting
/// with it followed by `.` (Rust's `::` is accepted as `.`); the longest match wins.
public struct LogFilter: Sendable, Equatable {
    public var defaultLevel: Logger.Level = .info
    public var overrides: [String: Logger.Level] = [:]

    public init() {}

    /// Parses `spec`; unreadable parts are returned as warnings and skipped (logging never aborts
    /// start-up).
    public static func parse(_ spec: String) -> (LogFilter, [String]) {
        var filter = LogFilter()
        var warnings: [String] = []
        for rawPart in spec.split(separator: ",") {
            let part = rawPart.trimmingSpaces
            if part.isEmpty { continue }
            if let eq = part.firstIndex(of: "=") {
                let target = String(part[..<eq]).trimmingSpaces.replacingDoubleColons
                guard let level = level(String(part[part.index(after: eq)...])), !target.isEmpty else {
                    warnings.append("log_level: cannot read `\(part)`; expected target=level")
                    continue
                }
                filter.overrides[target] = level
            } else if let level = level(part) {
                filter.defaultLevel = level
            } else {
                warnings.append("log_level: unknown level `\(part)`; expected trace, debug, info, warn, error or off")
            }
        }
        return (filter, warnings)
    }

    static func level(_ text: String) -> Logger.Level? {
        switch text.trimmingSpaces.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        case "off", "critical": .critical
        default: nil
        }
    }

    public func level(for label: String) -> Logger.Level {
        var best: (length: Int, level: Logger.Level)?
        for (target, level) in overrides where label == target || label.hasPrefix(target + ".") {
            if best == nil || target.count > best!.length { best = (target.count, level) }
        }
        return best?.level ?? defaultLevel
    }
}

extension String {
    var replacingDoubleColons: String {
        split(separator: ":", omittingEmptySubsequences: true).joined(separator: ".")
    }
}

/// Standard error as swift-log's `StreamLogHandler` writes it, with the logger's metadata kept
/// aside until a message is written. `StreamLogHandler` formats all its metadata whenever a key
/// changes, and the HTTP server sets a request id on every request's logger, most of which never
/// log anything.
struct StandardErrorLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        stream = StreamLogHandler.standardError(label: label)
        stream.logLevel = level
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { $1 } }
        stream.log(event: event)
    }
}
