import XCTest
@testable import FathomAttribution

final class TargetingTests: XCTestCase {
    func testLabelSelectors() throws {
        let labels = ["app": "web", "tier": "front", "env": "prod"]
        for (selector, expected) in [
            ("app=web", true), ("app==web", true), ("app=db", false), ("app!=db", true), ("app!=web", false),
            ("env in (prod, staging)", true), ("env notin (prod)", false), ("env notin (dev,qa)", true),
            ("tier", true), ("!tier", false), ("!canary", true), ("app=web,tier=front", true), ("app=web,tier=back", false),
            ("app=web, env in (dev,prod), !canary", true), ("missing in (a)", false), ("missing notin (a)", true),
        ] {
            XCTAssertEqual(try LabelSelector(selector).matches(labels), expected, selector)
        }
        XCTAssertThrowsError(try LabelSelector("")) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        XCTAssertThrowsError(try LabelSelector("env in prod")) { XCTAssertTrue("\($0)".contains("parentheses"), "\($0)") }
        XCTAssertThrowsError(try LabelSelector("a b=c")) { XCTAssertTrue("\($0)".contains("bad label key"), "\($0)") }
        XCTAssertThrowsError(try PodNamePattern("(")) { XCTAssertTrue("\($0)".contains("not a regular expression"), "\($0)") }
    }

    func testRulesDecideWithReasons() throws {
        var rules = TargetRules()
        XCTAssertEqual(rules.decide(namespace: "a", name: "x", labels: [:]).captured, true)
        XCTAssertTrue(rules.isEmpty)

        rules.excludeNamespaces = ["kube-system"]
        XCTAssertEqual(rules.decide(namespace: "kube-system", name: "coredns-1", labels: [:]).captured, false)
        XCTAssertTrue(rules.decide(namespace: "kube-system", name: "c", labels: [:]).reason.contains("--exclude-namespace"))
        XCTAssertEqual(rules.decide(namespace: "shop", name: "cart-1", labels: [:]).captured, true)
        XCTAssertFalse(rules.hasIncludes)

        rules.includeNamespaces = ["shop"]
        rules.includePods = [try PodNamePattern("^(cart|frontend)-")]
        XCTAssertEqual(rules.decide(namespace: "shop", name: "cart-1", labels: [:]).captured, true)
        XCTAssertEqual(rules.decide(namespace: "shop", name: "payment-1", labels: [:]).captured, false, "every include kind must match")
        XCTAssertEqual(rules.decide(namespace: "other", name: "cart-1", labels: [:]).captured, false)
        rules.excludeLabels = [try LabelSelector("canary=true")]
        let canary = rules.decide(namespace: "shop", name: "cart-2", labels: ["canary": "true"])
        XCTAssertFalse(canary.captured, "an exclusion wins over inclusions")
        XCTAssertTrue(canary.reason.contains("canary=true"), canary.reason)
    }

    func testPlanWritesOnlyWhatTheKernelNeeds() throws {
        func pod(_ ns: String, _ name: String, _ uid: String) -> Workload {
            Workload(kind: .pod, namespace: ns, name: name, uid: uid, node: "w1", labels: ["app": name])
        }
        let pods = [pod("shop", "cart", "u1"), pod("batch", "job", "u2"), pod("shop", "new", "u3")]
        let cgroups: [String: UInt64] = ["u1": 101, "u2": 102]

        let none = TargetRules().plan(pods: pods, podCgroups: cgroups)
        XCTAssertTrue(none.cgroups.isEmpty, "no rules: the kernel maps stay empty, everything is captured")
        XCTAssertTrue(none.pods.allSatisfy(\.captured))

        var exclude = TargetRules()
        exclude.excludeNamespaces = ["batch"]
        let excluded = exclude.plan(pods: pods, podCgroups: cgroups)
        XCTAssertEqual(excluded.cgroups, [102: .exclude], "without includes only exclusions go into the map")
        XCTAssertEqual(excluded.pods.map(\.pod), ["job", "cart", "new"])
        XCTAssertEqual(excluded.pods.map(\.captured), [false, true, true])
        XCTAssertEqual(excluded.pods.first?.cgroupID, 102)

        var include = TargetRules()
        include.includeNamespaces = ["shop"]
        let included = include.plan(pods: pods, podCgroups: cgroups)
        XCTAssertEqual(included.cgroups, [0: .include, 101: .include, 102: .exclude])
        let new = try XCTUnwrap(included.pods.first { $0.pod == "new" })
        XCTAssertFalse(new.captured, "included, but without its cgroup the kernel cannot capture it yet")
        XCTAssertTrue(new.reason.contains("cgroup is not found"), new.reason)
        XCTAssertEqual(include.plan(pods: [], podCgroups: [:]).cgroups, [0: .include],
                       "with includes and no pod yet, nothing is captured (not everything)")
    }
}
