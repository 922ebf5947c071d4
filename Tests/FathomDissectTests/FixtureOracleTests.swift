import FathomModel
import Foundation
import XCTest

@testable import FathomDissect

/// Every fixture is real traffic (make-fixtures.sh); tshark, run here, is the oracle for what the calls must say.
final class FixtureOracleTests: XCTestCase {
    private let httpPort = ["tcp.port==18080,http"]
    /// tshark leaves out-of-order segments alone unless told.
    private let reorder = ["-o", "tcp.reassemble_out_of_order:TRUE"]

    /// "GET /hello?x=1" rows of tshark's requests, in capture order.
    private func tsharkHTTPRequests(_ file: URL) throws -> [String] {
        try Tshark.fields(
            file, filter: "http.request", fields: ["http.request.method", "http.request.uri"], decodeAs: httpPort,
            extra: reorder)
            .map { "\($0[0]) \($0[1])" }
    }

    /// "/hello?x=1 200" rows of tshark's responses (the URI of the request they answer, when tshark knows it).
    private func tsharkHTTPResponses(_ file: URL) throws -> [String] {
        try Tshark.fields(
            file, filter: "http.response", fields: ["http.response_for.uri", "http.response.code"], decodeAs: httpPort,
            extra: reorder)
            .map { row in
                var uri = row[0]
                if let range = uri.range(of: "://") {
                    uri = String(uri[range.upperBound...].drop { $0 != "/" })
                }
                return "\(uri) \(row[1])"
            }
    }

    private func target(_ call: Call) -> String { call.query.isEmpty ? call.path : "\(call.path)?\(call.query)" }

    private func httpCalls(_ name: String) throws -> (calls: [Call], engine: DissectionEngine, sink: CollectingSink) {
        let (sink, engine) = dissect(try TestPcapFile.fixture(name).packets)
        return (sink.calls.filter { $0.proto == "http" || $0.proto == "graphql" }, engine, sink)
    }

    func testHTTP1MatchesTshark() throws {
        try Tshark.require()
        let file = TestPcapFile.fixtureURL("http1.pcap")
        let (calls, engine, sink) = try httpCalls("http1.pcap")
        let requests = try tsharkHTTPRequests(file)
        XCTAssertEqual(requests.count, 10)
        XCTAssertEqual(calls.map { "\($0.method) \(target($0))" }, requests)
        XCTAssertEqual(calls.map { "\(target($0)) \($0.status)" }.sorted(), try tsharkHTTPResponses(file).sorted())
        XCTAssertTrue(calls.allSatisfy { !$0.flags.gap && !$0.flags.noResponse && !$0.flags.noRequest })

        let byPath = Dictionary(calls.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(byPath["/hello"]?.query, "name=ada&x=1")
        XCTAssertEqual(byPath["/hello"]?.response?.body, "hello, fathom\n")
        XCTAssertEqual(byPath["/chunked"]?.response?.body, "first chunk\nsecond chunk\nthird\n")
        XCTAssertEqual(byPath["/chunked"]?.response?.header("transfer-encoding"), "chunked")
        XCTAssertTrue(byPath["/gzip"]?.response?.body.hasPrefix("{\"compressed\": true") ?? false)
        XCTAssertEqual(byPath["/gzip"]?.response?.bodyEncoding, "utf8")
        XCTAssertEqual(byPath["/big"]?.response?.bodySize, 84000)
        XCTAssertEqual(byPath["/items"]?.request?.body, "name=fathom&kind=test")
        XCTAssertEqual(byPath["/graphql"]?.proto, "graphql")
        XCTAssertEqual(byPath["/graphql"]?.http?.graphqlOperation, "GetUser")
        XCTAssertEqual(calls.first { $0.method == "HEAD" }?.response?.bodySize, 0)
        XCTAssertEqual(byPath["/empty"]?.status, 204)
        XCTAssertTrue(calls.allSatisfy { $0.src.port != 18080 && $0.dst.port == 18080 && $0.http?.version == "HTTP/1.1" })
        XCTAssertEqual(Set(calls.map(\.id)).count, calls.count)
        XCTAssertTrue(calls.allSatisfy { $0.id.hasPrefix("n1-") })

        // One flow per curl invocation, all closed with FIN, handshake seen.
        XCTAssertEqual(sink.flows.count, 5)
        XCTAssertTrue(sink.flows.allSatisfy { $0.endReason == "fin" && $0.proto == "http" && !$0.midStream && $0.handshakeRttMs > 0 })
        XCTAssertEqual(Set(calls.map(\.connectionID)), Set(sink.flows.map(\.id)))
        XCTAssertEqual(engine.statistics.gaps, 0)
        XCTAssertEqual(engine.statistics.bufferedBytes, 0)
    }

    func testReorderedHTTP1GivesTheSameCalls() throws {
        try Tshark.require()
        let original = try httpCalls("http1.pcap").calls
        let (calls, engine, _) = try httpCalls("http1-reordered.pcap")
        let file = TestPcapFile.fixtureURL("http1-reordered.pcap")
        XCTAssertEqual(calls.map { "\($0.method) \(target($0))" }, try tsharkHTTPRequests(file))
        // tshark pairs responses in file order, which the swap across directions breaks: the original is the oracle.
        XCTAssertEqual(
            calls.map { "\(target($0)) \($0.status)" }.sorted(),
            try tsharkHTTPResponses(TestPcapFile.fixtureURL("http1.pcap")).sorted())
        for (call, expected) in zip(calls, original) {
            XCTAssertEqual(call.method + " " + call.path, expected.method + " " + expected.path)
            XCTAssertEqual(call.response?.body, expected.response?.body, call.path)
        }
        XCTAssertTrue(calls.allSatisfy { !$0.flags.gap && !$0.flags.noRequest && !$0.flags.noResponse })
        XCTAssertGreaterThan(engine.statistics.outOfOrderSegments, 0)
        XCTAssertEqual(engine.statistics.gaps, 0)
    }

    func testLossyHTTP1KeepsEveryCallAndMarksTheGap() throws {
        try Tshark.require()
        let (calls, engine, _) = try httpCalls("http1-lossy.pcap")
        let file = TestPcapFile.fixtureURL("http1-lossy.pcap")
        // tshark loses what follows the hole; fathom skips it inside the body and keeps every call of the original.
        let ours = calls.map { "\($0.method) \(target($0))" }
        for request in try tsharkHTTPRequests(file) { XCTAssertTrue(ours.contains(request), request) }
        let responses = calls.map { "\(target($0)) \($0.status)" }
        for response in try tsharkHTTPResponses(file) { XCTAssertTrue(responses.contains(response), response) }
        XCTAssertEqual(ours, try tsharkHTTPRequests(TestPcapFile.fixtureURL("http1.pcap")))
        let damaged = calls.filter(\.flags.gap)
        XCTAssertEqual(damaged.map(\.path), ["/big"])
        XCTAssertEqual(damaged.first?.response?.bodySize, 84000)
        XCTAssertEqual(engine.statistics.gaps, 1)
    }

    func testMidStreamHTTP1MatchesTshark() throws {
        try Tshark.require()
        let (calls, _, sink) = try httpCalls("http1-midstream.pcap")
        let file = TestPcapFile.fixtureURL("http1-midstream.pcap")
        XCTAssertEqual(calls.filter { !$0.flags.noRequest }.map { "\($0.method) \(target($0))" }, try tsharkHTTPRequests(file))
        XCTAssertEqual(
            calls.filter { !$0.flags.noResponse }.map(\.status).sorted(),
            try Tshark.fields(file, filter: "http.response", fields: ["http.response.code"], decodeAs: httpPort)
                .compactMap { Int($0[0]) }.sorted())
        XCTAssertTrue(sink.flows.contains { $0.midStream })
    }

    func testHTTP2MatchesTshark() throws {
        try Tshark.require()
        let file = TestPcapFile.fixtureURL("http2.pcap")
        let (sink, _) = dissect(try TestPcapFile.fixture("http2.pcap").packets)
        let calls = sink.calls.filter { $0.proto == "http2" }
        let headers = try headerPairs(file, port: 18081)
        XCTAssertEqual(calls.map(target).sorted(), headers.filter { $0.0 == ":path" }.map(\.1).sorted())
        XCTAssertEqual(calls.map { String($0.status) }.sorted(), headers.filter { $0.0 == ":status" }.map(\.1).sorted())
        XCTAssertEqual(calls.count, 3)
        let large = calls.first { $0.path == "/large.txt" }
        XCTAssertEqual(large?.response?.bodySize, 40000)
        XCTAssertEqual(large?.response?.bodyTruncated, false)
        XCTAssertTrue(calls.allSatisfy { $0.http?.version == "HTTP/2" && $0.http?.host == "127.0.0.1:18081" })
    }

    func testGRPCMatchesTshark() throws {
        try Tshark.require()
        let file = TestPcapFile.fixtureURL("grpc.pcap")
        let (sink, _) = dissect(try TestPcapFile.fixture("grpc.pcap").packets)
        let calls = sink.calls.filter { $0.proto == "grpc" }
        let headers = try headerPairs(file, port: 18082)
        XCTAssertEqual(calls.map(\.path).sorted(), headers.filter { $0.0 == ":path" }.map(\.1).sorted())
        XCTAssertEqual(calls.map { String($0.status) }.sorted(), headers.filter { $0.0 == "grpc-status" }.map(\.1).sorted())
        let messages = try Tshark.fields(file, filter: "grpc", fields: ["grpc.message_length"], decodeAs: ["tcp.port==18082,http2"])
            .flatMap { $0[0].split(separator: ",") }
        XCTAssertEqual(calls.map { ($0.grpc?.requestMessages ?? 0) + ($0.grpc?.responseMessages ?? 0) }.reduce(0, +), messages.count)
        let failed = calls.first { $0.status == 5 }
        XCTAssertEqual(failed?.grpc?.message, "no such thing: fail")
        XCTAssertEqual(failed?.grpc?.service, "fathom.Echo")
        XCTAssertEqual(failed?.grpc?.method, "Say")
        XCTAssertEqual(calls.first { $0.path == "/fathom.Echo/Stream" }?.grpc?.responseMessages, 3)
        XCTAssertEqual(calls.first { $0.status == 0 && $0.path.hasSuffix("Say") }?.response?.bodyEncoding, "base64")
    }

    /// (name, value) of every HTTP/2 header tshark decoded on `port`.
    private func headerPairs(_ file: URL, port: Int) throws -> [(String, String)] {
        try Tshark.fields(
            file, filter: "http2.type==1", fields: ["http2.header.name", "http2.header.value"],
            decodeAs: ["tcp.port==\(port),http2"], extra: ["-E", "aggregator=|"]
        ).flatMap { row in
            zip(row[0].split(separator: "|", omittingEmptySubsequences: false), row[1].split(separator: "|", omittingEmptySubsequences: false))
                .map { (String($0), String($1)) }
        }
    }

    func testDNSMatchesTshark() throws {
        try Tshark.require()
        let file = TestPcapFile.fixtureURL("dns.pcap")
        let (sink, _) = dissect(try TestPcapFile.fixture("dns.pcap").packets)
        let calls = sink.calls.filter { $0.proto == "dns" }
        let typeNumbers = ["A": "1", "AAAA": "28", "CNAME": "5", "MX": "15", "TXT": "16", "SRV": "33"]
        let oracle = try Tshark.fields(
            file, filter: "dns.flags.response==1",
            fields: ["dns.id", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.a", "dns.aaaa", "dns.cname",
                     "dns.mx.mail_exchange", "dns.txt", "dns.srv.target"],
            decodeAs: ["udp.port==18053,dns", "tcp.port==18053,dns"])
        XCTAssertEqual(calls.count, oracle.count)
        for (call, row) in zip(calls, oracle) {
            XCTAssertEqual(String(format: "0x%04x", call.dns?.transactionID ?? 0), row[0])
            XCTAssertEqual(call.path, row[1])
            XCTAssertEqual(typeNumbers[call.method], row[2])
            XCTAssertEqual(String(call.status), row[3])
            let answers = call.dns?.answers ?? []
            func data(_ type: String) -> String {
                answers.filter { $0.type == type }.map { type == "MX" || type == "SRV" ? String($0.data.split(separator: " ").last ?? "") : $0.data }
                    .joined(separator: ",")
            }
            XCTAssertEqual([data("A"), data("AAAA"), data("CNAME"), data("MX"), data("TXT"), data("SRV")], Array(row[4...9]), call.path)
            XCTAssertFalse(call.flags.noResponse)
        }
        XCTAssertEqual(calls.filter { $0.status == 3 }.map { $0.dns?.rcode }, ["NXDOMAIN"])
        XCTAssertEqual(sink.flows.filter { $0.transport == "tcp" && $0.proto == "dns" }.count, 1)
        XCTAssertTrue(sink.names.contains { $0.ip == "10.1.2.3" && $0.name == "web.fathom.test" })
        XCTAssertTrue(sink.names.contains { $0.ip == "fd00::1:2:3" && $0.name == "web.fathom.test" })
    }

    func testTLSMatchesTshark() throws {
        try Tshark.require()
        let file = TestPcapFile.fixtureURL("tls.pcap")
        let (sink, _) = dissect(try TestPcapFile.fixture("tls.pcap").packets)
        let calls = sink.calls.filter { $0.proto == "tls" }
        let hellos = try Tshark.fields(
            file, filter: "tls.handshake.type==1",
            fields: ["tls.handshake.extensions_server_name", "tls.handshake.ja3", "tls.handshake.extensions_alpn_str"],
            decodeAs: ["tcp.port==18443,tls"])
        XCTAssertEqual(calls.count, hellos.count)
        for (call, row) in zip(calls, hellos) {
            XCTAssertEqual(call.tls?.sni, row[0])
            XCTAssertEqual(call.path, row[0])
            XCTAssertEqual(call.tls?.ja3, row[1])
        }
        XCTAssertEqual(calls.first?.tls?.version, "TLS 1.3")
        XCTAssertEqual(calls.first?.tls?.cipher, "TLS_AES_256_GCM_SHA384")
        XCTAssertEqual(calls.last?.tls?.version, "TLS 1.2")
        XCTAssertEqual(calls.last?.tls?.alpn, ["http/1.1"])
        XCTAssertTrue(calls.allSatisfy { !$0.flags.noResponse })
    }

    /// JA4 against the ja4plus reference implementation (pip install ja4plus).
    func testJA4MatchesReferenceImplementation() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "ja4plus.cli", "--format", "csv", "--types", "ja4", "analyze",
                             TestPcapFile.fixtureURL("tls.pcap").path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, !data.isEmpty else {
            print("ja4plus: \(errorText)")
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("ja4plus is required (pip install ja4plus)") }
            throw XCTSkip("ja4plus not installed")
        }
        let expected = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).dropFirst()
            .map { String($0.split(separator: ",")[3]) }
        let (sink, _) = dissect(try TestPcapFile.fixture("tls.pcap").packets)
        XCTAssertEqual(sink.calls.compactMap { $0.tls?.ja4 }, expected)
        XCTAssertEqual(expected.count, 2)
    }
}
