import Foundation
import QuiverJSON
import QuiverModel
import QuiverService
import Synchronization

/// Counts and times REST responses per endpoint (the route pattern, not the raw path), method and
/// status, and renders them with the node's gauges in Prometheus' text format.
final class RESTMetrics: Sendable {
    /// Upper bounds of the duration histogram, seconds.
    static let bucketBoundsSeconds: [Double] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 10]

    struct Key: Hashable, Comparable {
        let endpoint: String
        let method: String
        let status: Int

        static func < (a: Key, b: Key) -> Bool {
            (a.endpoint, a.method, a.status) < (b.endpoint, b.method, b.status)
        }

        var labels: String {
            "method=\"\(method)\",endpoint=\"\(escape(endpoint))\",status=\"\(status)\""
        }
    }

    struct Series {
        var count = 0
        var sumSeconds = 0.0
        var minSeconds = Double.infinity
        var maxSeconds = 0.0
        var buckets = [Int](repeating: 0, count: RESTMetrics.bucketBoundsSeconds.count)
        var last = Date()
    }

    private let series = Mutex<[Key: Series]>([:])

    func record(endpoint: String, method: String, status: Int, seconds: Double) {
        series.withLock { all in
            var s = all[Key(endpoint: endpoint, method: method, status: status), default: Series()]
            s.count += 1
            s.sumSeconds += seconds
            s.minSeconds = min(s.minSeconds, seconds)
            s.maxSeconds = max(s.maxSeconds, seconds)
            s.last = Date()
            for (i, bound) in Self.bucketBoundsSeconds.enumerated() where seconds <= bound {
                s.buckets[i] += 1
            }
            all[Key(endpoint: endpoint, method: method, status: status)] = s
        }
    }

    /// `RequestsTelemetry` for `GET /telemetry`: per "METHOD pattern" and status, the responses'
    /// count and durations (gRPC is not served, so its map is empty).
    func telemetry(level: Int) -> JSONValue {
        var responses: [String: [(Int, JSONValue)]] = [:]
        for (key, s) in series.withLock({ $0 }) {
            var times = OperationTimes()
            times.count = s.count
            times.totalMicros = Int64((s.sumSeconds * 1_000_000).rounded())
            times.minMicros = Int64((s.minSeconds * 1_000_000).rounded())
            times.maxMicros = Int64((s.maxSeconds * 1_000_000).rounded())
            times.last = s.last
            let name = key.endpoint == "unknown" ? "unknown" : "\(key.method) \(key.endpoint)"
            responses[name, default: []].append((key.status, QuiverService.durationStatistics(times, level: level)))
        }
        let rest = JSONObject(responses.keys.sorted().map { name in
            (name, .object(JSONObject(responses[name]!.sorted { $0.0 < $1.0 }.map { ("\($0.0)", $0.1) })))
        })
        return ["rest": ["responses": .object(rest)], "grpc": ["responses": .object(JSONObject())]]
    }

    /// Prometheus exposition text. `gauges` are (name, help, value) of node-wide figures.
    /// `labelled`: gauges with one series per label set (`resource="disk"`), none when empty.
    func render(appName: String, version: String, gauges: [(String, String, Int)],
                labelled: [(String, String, [(String, Int)])] = []) -> String {
        let snapshot = series.withLock { $0 }.sorted { $0.key < $1.key }
        var out = ""
        func header(_ name: String, _ help: String, _ type: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        header("app_info", "information about the server", "gauge")
        out += "app_info{name=\"\(appName)\",version=\"\(version)\"} 1\n"
        for (name, help, value) in gauges {
            header(name, help, "gauge")
            out += "\(name) \(value)\n"
        }
        for (name, help, series) in labelled where !series.isEmpty {
            header(name, help, "gauge")
            for (labels, value) in series { out += "\(name){\(labels)} \(value)\n" }
        }
        header("rest_responses_total", "total number of REST responses", "counter")
        for (key, s) in snapshot { out += "rest_responses_total{\(key.labels)} \(s.count)\n" }
        header("rest_responses_fail_total", "total number of failed REST responses (status 5xx)", "counter")
        for (key, s) in snapshot { out += "rest_responses_fail_total{\(key.labels)} \(key.status >= 500 ? s.count : 0)\n" }
        header("rest_responses_avg_duration_seconds", "average REST response duration", "gauge")
        for (key, s) in snapshot { out += "rest_responses_avg_duration_seconds{\(key.labels)} \(s.sumSeconds / Double(max(s.count, 1)))\n" }
        header("rest_responses_min_duration_seconds", "shortest REST response duration", "gauge")
        for (key, s) in snapshot { out += "rest_responses_min_duration_seconds{\(key.labels)} \(s.minSeconds)\n" }
        header("rest_responses_max_duration_seconds", "longest REST response duration", "gauge")
        for (key, s) in snapshot { out += "rest_responses_max_duration_seconds{\(key.labels)} \(s.maxSeconds)\n" }
        header("rest_responses_duration_seconds", "REST response duration histogram", "histogram")
        for (key, s) in snapshot {
            for (i, bound) in Self.bucketBoundsSeconds.enumerated() {
                out += "rest_responses_duration_seconds_bucket{\(key.labels),le=\"\(bound)\"} \(s.buckets[i])\n"
            }
            out += "rest_responses_duration_seconds_bucket{\(key.labels),le=\"+Inf\"} \(s.count)\n"
            out += "rest_responses_duration_seconds_sum{\(key.labels)} \(s.sumSeconds)\n"
            out += "rest_responses_duration_seconds_count{\(key.labels)} \(s.count)\n"
        }
        return out
    }
}

private func escape(_ label: String) -> String {
    label.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
}
