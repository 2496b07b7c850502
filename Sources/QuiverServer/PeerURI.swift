import Foundation

/// Checks the peer URIs given with `--uri` and `--bootstrap`: `http://host:port` or `https://…`.
public enum PeerURI {
    public static func problem(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            return "not a URI; expected http://HOST:PORT"
        }
        guard scheme == "http" || scheme == "https" else {
            return "scheme must be http or https, found \(scheme)"
        }
        guard let host = components.host, !host.isEmpty else { return "missing host; expected http://HOST:PORT" }
        guard let port = components.port else { return "missing port; expected http://HOST:PORT" }
        guard (1...65535).contains(port) else { return "port \(port) is out of range" }
        return nil
    }
}
