import FathomKFL
import FathomModel
import XCTest

final class CatalogueTests: XCTestCase {
    func testNamesAndAliasesAreUnique() {
        var seen: [String: String] = [:]
        for field in KFL.fields {
            for name in [field.name] + field.aliases {
                XCTAssertNil(seen[name], "\(name) is claimed by \(seen[name] ?? "") and \(field.name)")
                seen[name] = field.name
            }
        }
    }

    func testEveryExampleCompilesAndEveryFieldIsDescribed() throws {
        for field in KFL.fields {
            XCTAssertFalse(field.summary.isEmpty, field.name)
            XCTAssertNoThrow(try KFL.compile(field.example), "\(field.name): \(field.example)")
        }
    }

    func testValuesHaveTheDeclaredTypeOnEveryFixture() {
        for field in KFL.fields {
            for call in Fixtures.calls {
                let value = field.value(of: call)
                XCTAssertTrue(value.type == field.type || isEmptyCollection(value), "\(field.name) on \(call.id): \(value.type)")
            }
        }
    }

    private func isEmptyCollection(_ value: KFLValue) -> Bool {
        switch value {
        case .list(let items): return items.isEmpty
        case .map(let entries): return entries.isEmpty
        default: return false
        }
    }

    func testKFL1NamesAreAliasesOfKFL2Fields() {
        let expected = [
            "request.path": "path", "request.method": "method", "response.status": "status_code", "src.pod": "src.pod.name",
            "dst.svc": "dst.service.name", "src.ns": "src.namespace", "dst.ns": "dst.namespace", "request.headers": "request.headers",
            "request.query": "request.query", "src.name": "src.name", "proto": "protocol",
        ]
        for (alias, canonical) in expected {
            XCTAssertEqual(KFLCatalogue.field(named: alias)?.name, canonical, alias)
        }
    }

    func testCoversEveryGroupTheIssueNames() {
        let groups = Set(KFL.fields.map(\.group))
        for group in ["call", "network", "protocol", "http", "grpc", "dns", "tls", "kubernetes", "process", "dns resolution", "quality"] {
            XCTAssertTrue(groups.contains(group), group)
        }
        XCTAssertGreaterThan(KFL.fields.count, 100)
    }
}
