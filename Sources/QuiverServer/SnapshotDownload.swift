import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import QuiverService
import Storage
import Synchronization

/// `service.snapshot_url_allowed_hosts`: the hosts whose `http(s)://` URLs snapshot recovery may
/// download from. An entry is a host name or address (any port), `host:port`, `[v6 address]:port`,
/// or `*.domain` (any name under the domain, not the domain itself).
public struct SnapshotHosts: Sendable, Equatable {
    struct Entry: Sendable, Equatable {
        var host: String
        var port: Int?
        var subdomains: Bool
    }

    let entries: [Entry]

    public init(_ list: [String]) throws(ConfigError) {
        var entries: [Entry] = []
        for item in list {
            let text = item.trimmingSpaces.lowercased()
            let subdomains = text.hasPrefix("*.")
            let rest = subdomains ? String(text.dropFirst(2)) : text
            guard !rest.isEmpty, !rest.contains("/"), !rest.contains("*"), !rest.contains("@"),
                  let parsed = URLComponents(string: "http://" + rest), let host = parsed.host, !host.isEmpty,
                  parsed.path.isEmpty, parsed.query == nil else {
                throw ConfigError("service.snapshot_url_allowed_hosts: \"\(item)\" is not a host, host:port or *.domain")
            }
            entries.append(Entry(host: Self.bare(host), port: parsed.port, subdomains: subdomains))
        }
        self.entries = entries
    }

    /// Whether `url` is on one of the hosts (a URL without a host never is).
    public func allows(_ url: URL) -> Bool {
        guard let raw = url.host, !raw.isEmpty else { return false }
        let host = Self.bare(raw.lowercased())
        let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
        return entries.contains { entry in
            let named = entry.subdomains ? host.hasSuffix("." + entry.host) : host == entry.host
            return named && (entry.port == nil || entry.port == port)
        }
    }

    /// A host without the brackets of an IPv6 literal and without a trailing dot.
    private static func bare(_ host: String) -> String {
        var host = host
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        while host.hasSuffix(".") { host.removeLast() }
        return host
    }
}

/// Fetches snapshots for recoveries from `http(s)://` locations, from the allowed hosts only
/// (redirects included).
enum SnapshotDownload {
    static func downloader(allowing hosts: SnapshotHosts?) -> SnapshotDownloader {
        { url, apiKey, destination throws(StorageError) in
            guard let address = URL(string: url), address.host != nil else {
                throw .badRequest("Snapshot location `\(url)` is not a valid URL")
            }
            if let hosts, !hosts.allows(address) {
                throw .forbidden("Snapshot recovery from `\(address.host ?? url)` is not allowed: the host is not in service.snapshot_url_allowed_hosts")
            }
            var request = URLRequest(url: address)
            request.timeoutInterval = 3600
            if let apiKey { request.setValue(apiKey, forHTTPHeaderField: "api-key") }
            let download = Download(url: url, destination: destination, hosts: hosts)
            let session = URLSession(configuration: .default, delegate: download, delegateQueue: nil)
            let outcome: Result<Void, StorageError> = await withCheckedContinuation { continuation in
                download.continuation.withLock { $0 = continuation }
                session.downloadTask(with: request).resume()
            }
            session.finishTasksAndInvalidate()
            try outcome.get()
        }
    }

    /// One download's delegate: refuses redirects to hosts that are not allowed (the completion
    /// handler form of a download task follows every redirect without asking), keeps the file.
    private final class Download: NSObject, URLSessionDownloadDelegate, Sendable {
        let url: String
        let destination: String
        let hosts: SnapshotHosts?
        let continuation = Mutex<CheckedContinuation<Result<Void, StorageError>, Never>?>(nil)
        /// The first failure seen (a refused redirect, a status, the file not kept).
        let failure = Mutex<StorageError?>(nil)

        init(url: String, destination: String, hosts: SnapshotHosts?) {
            self.url = url
            self.destination = destination
            self.hosts = hosts
        }

        private func fail(_ error: StorageError) {
            failure.withLock { if $0 == nil { $0 = error } }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
            if let hosts, let target = request.url, !hosts.allows(target) {
                fail(.forbidden("Snapshot recovery from `\(url)` was redirected to `\(target.host ?? "?")`, which is not in service.snapshot_url_allowed_hosts"))
                completionHandler(nil)
            } else {
                // The key was meant for the host asked, not for another one it sends us to.
                var next = request
                if request.url?.host != task.originalRequest?.url?.host { next.setValue(nil, forHTTPHeaderField: "api-key") }
                completionHandler(next)
            }
        }

        func urlSession(_ session: URLSession, downloadTask: URLSessionDownloadTask, didFinishDownloadingTo location: URL) {
            guard let http = downloadTask.response as? HTTPURLResponse else {
                return fail(.badInput("Failed to download tar from \(url): no answer"))
            }
            guard (200..<300).contains(http.statusCode) else {
                return fail(.badInput("Failed to download tar from \(url): status - \(http.statusCode)"))
            }
            do {
                try FileManager.default.moveItem(atPath: location.path, toPath: destination)
            } catch {
                fail(.serviceError("cannot keep the downloaded snapshot: \(error)"))
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            if let error { fail(.badInput("Failed to download tar from \(url): \(error.localizedDescription)")) }
            let result: Result<Void, StorageError> = failure.withLock { $0.map { .failure($0) } ?? .success(()) }
            continuation.withLock { $0.take() }?.resume(returning: result)
        }
    }
}
