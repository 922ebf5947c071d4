import Foundation
import XCTest
@testable import FathomAttribution

final class KubeConfigTests: XCTestCase {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fathom-kubeconfig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testKindStyleKubeconfigWithClientCertificate() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("config").path
        try """
            apiVersion: v1
            clusters:
            - cluster:
                certificate-authority-data: \(Data("CA PEM".utf8).base64EncodedString())
                server: https://127.0.0.1:6443   # kind
              name: kind-kind
            - cluster:
                server: "https://other.example:443"
              name: other
            contexts:
            - context:
                cluster: kind-kind
                user: kind-kind
              name: kind-kind
            - context:
                cluster: other
                user: other-user
              name: other
            current-context: kind-kind
            kind: Config
            preferences: {}
            users:
            - name: kind-kind
              user:
                client-certificate-data: \(Data("CERT".utf8).base64EncodedString())
                client-key-data: \(Data("KEY".utf8).base64EncodedString())
            - name: other-user
              user:
                token: 'abc#def'
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let kind = try KubeConfig.load(path: path)
        XCTAssertEqual(kind.server.absoluteString, "https://127.0.0.1:6443")
        XCTAssertEqual(kind.certificateAuthorityPEM, Array("CA PEM".utf8))
        XCTAssertEqual(kind.clientCertificatePEM, Array("CERT".utf8))
        XCTAssertEqual(kind.clientKeyPEM, Array("KEY".utf8))
        XCTAssertNil(kind.bearerToken)
        let other = try KubeConfig.load(path: path, context: "other")
        XCTAssertEqual(other.server.absoluteString, "https://other.example:443")
        XCTAssertEqual(other.bearerToken, "abc#def", "a # inside quotes is not a comment")
        XCTAssertThrowsError(try KubeConfig.load(path: path, context: "missing"))
    }

    func testFilesRelativeToTheKubeconfigAndJSON() throws {
        let dir = try temporaryDirectory()
        try "CA".write(to: dir.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let path = dir.appendingPathComponent("config.json").path
        try """
            {"clusters":[{"name":"c","cluster":{"server":"https://10.0.0.1:6443","certificate-authority":"ca.crt"}}],
             "users":[{"name":"u","user":{"token":"t0k"}}],
             "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try KubeConfig.load(path: path)
        XCTAssertEqual(config.certificateAuthorityPEM, Array("CA".utf8))
        XCTAssertEqual(config.currentToken, "t0k")
    }

    func testErrorsAreClear() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("bad").path
        try "clusters:\n- cluster:\n    insecure-skip-tls-verify: true\n  name: x\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try KubeConfig.load(path: path)) { XCTAssertTrue("\($0)".contains("server"), "\($0)") }
        try "users:\n- name: u\n  user:\n    exec:\n      command: aws\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try KubeConfig.load(path: path))
        try "a: b\n    c: d\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try KubeConfig.load(path: path)) { XCTAssertTrue("\($0)".contains("line 2"), "\($0)") }
        XCTAssertThrowsError(try KubeConfig.load(path: dir.appendingPathComponent("absent").path))
    }

    func testInCluster() throws {
        let dir = try temporaryDirectory()
        try "tok-1\n".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try "CA".write(to: dir.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let env = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let config = try KubeConfig.inCluster(environment: env, directory: dir.path)
        XCTAssertEqual(config.server.absoluteString, "https://10.96.0.1:443")
        XCTAssertEqual(config.currentToken, "tok-1")
        // Projected tokens rotate: the file is read again.
        try "tok-2".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        XCTAssertEqual(config.currentToken, "tok-2")
        let v6 = try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], directory: dir.path)
        XCTAssertEqual(v6.server.host, "fd00::1")
        XCTAssertThrowsError(try KubeConfig.inCluster(environment: [:], directory: dir.path))
    }

    func testGarbageNeverCrashesTheYAMLReader() {
        let alphabet = Array("-: \"'#ab{}[]\n\n  ")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let text = String((0..<Int.random(in: 0..<60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            if let value = try? MiniYAML.parse(text) {
                _ = try? KubeConfig.from(document: value, context: nil, baseDirectory: URL(fileURLWithPath: "/nonexistent"))
            }
        }
    }
}
