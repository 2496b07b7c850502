import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import QuiverService
import Storage

/// Fetches snapshots for recoveries from `http(s)://` locations.
enum SnapshotDownload {
    static let downloader: SnapshotDownloader = { url, apiKey, destination throws(StorageError) in
        guard let address = URL(string: url) else { throw .badRequest("Snapshot location `\(url)` is not a valid URL") }
        var request = URLRequest(url: address)
        request.timeoutInterval = 3600
        if let apiKey { request.setValue(apiKey, forHTTPHeaderField: "api-key") }
        let outcome: Result<Void, StorageError> = await withCheckedContinuation { continuation in
            URLSession.shared.downloadTask(with: request) { file, response, error in
                guard let file, let http = response as? HTTPURLResponse, error == nil else {
                    continuation.resume(returning: .failure(.badInput("Failed to download tar from \(url): \(error.map { "\($0.localizedDescription)" } ?? "no answer")")))
                    return
                }
                guard (200..<300).contains(http.statusCode) else {
                    continuation.resume(returning: .failure(.badInput("Failed to download tar from \(url): status - \(http.statusCode)")))
                    return
                }
                do {
                    try FileManager.default.moveItem(atPath: file.path, toPath: destination)
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(.serviceError("cannot keep the downloaded snapshot: \(error)")))
                }
            }.resume()
        }
        try outcome.get()
    }
}
