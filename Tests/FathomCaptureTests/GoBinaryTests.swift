import Foundation
import XCTest

@testable import FathomCapture

final class GoBinaryTests: XCTestCase {
    func testReleaseOfVersionStrings() {
        XCTAssertEqual(GoBinary.release("go1.19.8").map { [$0.major, $0.minor] }, [1, 19])
        XCTAssertEqual(GoBinary.release("go1.17").map { [$0.major, $0.minor] }, [1, 17])
        XCTAssertEqual(GoBinary.release("devel go1.23-4f6d2a1 Tue").map { [$0.major, $0.minor] }, [1, 23])
        XCTAssertNil(GoBinary.release("gccgo"))
    }

    /// A Go executable named by FATHOM_GO_BINARY (the integration tests build one with and one without symbols): its
    /// version is read, both crypto/tls functions are found in the symbol table and in .gopclntab at the same
    /// offsets, and each has RET instructions.
    func testFindsCryptoTLSFunctionsWithAndWithoutSymbols() throws {
        guard let path = ProcessInfo.processInfo.environment["FATHOM_GO_BINARY"] else {
            // `make unit-test` builds one and names it; only a bare `swift test` lacks it.
            if ProcessInfo.processInfo.environment["CI"] == "true" { return XCTFail("FATHOM_GO_BINARY is not set") }
            throw XCTSkip("FATHOM_GO_BINARY names no Go executable")
        }
        let binary = GoBinary(elf: try ELFFile(path: path))
        XCTAssertTrue(binary.isGo)
        XCTAssertNotNil(binary.version.flatMap(GoBinary.release))
        let names: Set<String> = [TLSDiscovery.goWrite, TLSDiscovery.goRead]
        let fromTable = try binary.functionTableEntries(named: names).sorted { $0.name < $1.name }
        XCTAssertEqual(Set(fromTable.map(\.name)), names)
        let found = try binary.functions(named: names).sorted { $0.name < $1.name }
        XCTAssertEqual(found.map(\.fileOffset), fromTable.map(\.fileOffset))
        let verdict = TLSDiscovery.inspectGo(binary)
        XCTAssertNil(verdict.reason)
        XCTAssertEqual(verdict.probes.filter { $0.program == "tls_go_write" || $0.program == "tls_go_read" }.count, 2)
        XCTAssertGreaterThanOrEqual(verdict.probes.filter { $0.program == "tls_go_return" }.count, 2)
    }

    func testNotAGoFileIsNotGo() throws {
        XCTAssertFalse(GoBinary(elf: try ELFFile(path: "/usr/bin/ls")).isGo)
    }
}
