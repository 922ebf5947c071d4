import Foundation

/// How to reach the Kubernetes API: the server URL, the CA to trust and the credentials to present.
public struct KubeConfig: Sendable, Equatable {
    public var server: URL
    /// PEM bytes of the CA bundle; nil means the system trust store.
    public var certificateAuthorityPEM: [UInt8]?
    public var bearerToken: String?
    /// File re-read on every connection (projected service-account tokens rotate).
    public var bearerTokenFile: String?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// `insecure-skip-tls-verify: true` in a kubeconfig.
    public var insecureSkipTLSVerify = false

    public init(server: URL, certificateAuthorityPEM: [UInt8]? = nil, bearerToken: String? = nil,
                bearerTokenFile: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.bearerToken = bearerToken
        self.bearerTokenFile = bearerTokenFile
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }

    /// The token to send now: the file's current content when there is one.
    public var currentToken: String? {
        if let bearerTokenFile, let data = FileManager.default.contents(atPath: bearerTokenFile) {
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return bearerToken
    }
}

public struct KubeConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension KubeConfig {
    /// Where Kubernetes mounts a pod's service-account token and CA.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT` and the pod's service-account token and CA.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 directory: String = serviceAccountDirectory) throws -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw KubeConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard let url = URL(string: "https://\(hostPart):\(port)") else { throw KubeConfigError("bad API address \(host):\(port)") }
        let tokenFile = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenFile) else {
            throw KubeConfigError("no service-account token at \(tokenFile) (automountServiceAccountToken off?)")
        }
        let ca = FileManager.default.contents(atPath: directory + "/ca.crt").map { [UInt8]($0) }
        return KubeConfig(server: url, certificateAuthorityPEM: ca, bearerTokenFile: tokenFile)
    }

    /// Reads a kubeconfig file (YAML or JSON): the current context's cluster and user. Supports server, CA (data or
    /// file), token (inline or file), client certificate and key (data or file); exec and auth-provider plugins are not.
    public static func load(path: String, context: String? = nil) throws -> KubeConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw KubeConfigError("cannot read \(path)") }
        let document = try MiniYAML.parse(String(decoding: data, as: UTF8.self))
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try from(document: document, context: context, baseDirectory: base)
    }

    static func from(document: MiniYAML.Value, context wanted: String?, baseDirectory: URL) throws -> KubeConfig {
        func named(_ list: String, _ name: String?) -> MiniYAML.Value? {
            let items = document[list]?.list ?? []
            guard let name else { return items.first }
            return items.first { $0["name"]?.string == name }
        }
        let contextName = wanted ?? document["current-context"]?.string
        let context = named("contexts", contextName)?["context"]
        if wanted != nil, context == nil { throw KubeConfigError("no context named \(wanted ?? "")") }
        guard let cluster = named("clusters", context?["cluster"]?.string)?["cluster"] else {
            throw KubeConfigError("kubeconfig has no cluster for context \(contextName ?? "(none)")")
        }
        guard let serverText = cluster["server"]?.string, let server = URL(string: serverText) else {
            throw KubeConfigError("cluster has no server URL")
        }
        let user = named("users", context?["user"]?.string)?["user"]
        func bytes(data: String, file: String, in section: MiniYAML.Value?) throws -> [UInt8]? {
            if let encoded = section?[data]?.string {
                guard let decoded = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                    throw KubeConfigError("\(data) is not base64")
                }
                return [UInt8](decoded)
            }
            if let name = section?[file]?.string {
                let url = name.hasPrefix("/") ? URL(fileURLWithPath: name) : baseDirectory.appendingPathComponent(name)
                guard let contents = FileManager.default.contents(atPath: url.path) else {
                    throw KubeConfigError("cannot read \(file) \(url.path)")
                }
                return [UInt8](contents)
            }
            return nil
        }
        if user?["exec"] != nil || user?["auth-provider"] != nil, user?["token"] == nil, user?["client-certificate-data"] == nil {
            throw KubeConfigError("exec and auth-provider credentials are not supported: use a token or a client certificate")
        }
        var config = KubeConfig(
            server: server,
            certificateAuthorityPEM: try bytes(data: "certificate-authority-data", file: "certificate-authority", in: cluster),
            bearerToken: user?["token"]?.string,
            bearerTokenFile: user?["tokenFile"]?.string,
            clientCertificatePEM: try bytes(data: "client-certificate-data", file: "client-certificate", in: user),
            clientKeyPEM: try bytes(data: "client-key-data", file: "client-key", in: user))
        config.insecureSkipTLSVerify = cluster["insecure-skip-tls-verify"]?.string == "true"
        return config
    }
}
