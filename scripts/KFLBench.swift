import FathomKFL
import FathomModel
#if canImport(Glibc)
import Glibc
#endif

/// Full-scan evaluation rate of filters that cannot be pushed down, over one million in-memory calls, one core.
@main
struct KFLBench {
    static func seconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func main() throws {
        let count = 1_000_000
        let paths = ["/api/v1/checkout", "/api/v1/cart/items", "/healthz", "/api/v2/users/42", "/static/app.js"]
        let agents = ["curl/8.0", "Mozilla/5.0", "python-requests/2.31", "Go-http-client/1.1"]
        var calls: [Call] = []
        calls.reserveCapacity(count)
        for index in 0..<count {
            calls.append(Call(
                id: "n-\(index)", ts: 1_700_000_000_000 + Int64(index), node: "n", captureSource: .ebpf, proto: index % 7 == 0 ? "grpc" : "http",
                src: Endpoint(ip: "10.0.0.\(index % 250)", port: 40000 + index % 1000, pod: "frontend-\(index % 13)", namespace: "shop"),
                dst: Endpoint(ip: "10.0.1.\(index % 250)", port: 8080, pod: "checkout-\(index % 5)", namespace: "shop", service: "checkout"),
                method: index % 3 == 0 ? "POST" : "GET", path: paths[index % paths.count], status: [200, 200, 200, 404, 503][index % 5],
                latencyMs: Double(index % 2000) / 3,
                request: Message(headers: [Header(name: "Host", value: "shop"), Header(name: "User-Agent", value: agents[index % agents.count]),
                                           Header(name: "Accept", value: "*/*")]),
                http: HTTPInfo(version: "HTTP/1.1")))
        }
        let probes = CommandLine.arguments.dropFirst()
        let expressions = !probes.isEmpty ? Array(probes) : [
            #"path.contains("checkout") && elapsed_time > 300000"#,
            #"request.headers["user-agent"].startsWith("curl") || (status_code != 200 && src.ip.endsWith(".7"))"#,
            #"src.pod contains "frontend-1" and dst.ns == "shop" and elapsedTime > 100"#,
            #"path.matches("^/api/v[0-9]+/cart") && method != "GET""#,
        ]
        // Baseline: the first filter hand-written in Swift, to separate iteration cost from KFL's.
        var baselineBest = Double.infinity
        var baselineMatched = 0
        for _ in 0..<3 {
            let start = seconds()
            baselineMatched = 0
            for index in calls.indices where calls[index].latencyMs * 1000 > 300_000 && calls[index].path.utf8.count > 10 {
                baselineMatched += 1
            }
            baselineBest = min(baselineBest, seconds() - start)
        }
        print("\((Double(count) / baselineBest / 1e4).rounded() / 100) M calls/s  (\(baselineMatched) matched)  hand-written Swift baseline")
        for expression in expressions {
            let filter = try KFL.compile(expression)
            var best = Double.infinity
            var matched = 0
            for _ in 0..<3 {
                let start = seconds()
                matched = 0
                // Borrow each call in place, as a store's row buffer would: Array's subscript getter would copy it.
                calls.withUnsafeBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return }
                    for index in buffer.indices where filter.matches(base + index) { matched += 1 }
                }
                best = min(best, seconds() - start)
            }
            // The same filter through `matches(_: Call)`, which takes the call by value.
            var byValueBest = Double.infinity
            for _ in 0..<3 {
                let start = seconds()
                var byValueMatched = 0
                for call in calls where filter.matches(call) { byValueMatched += 1 }
                byValueBest = min(byValueBest, seconds() - start)
                precondition(byValueMatched == matched)
            }
            print("    matches(Call): \((Double(count) / byValueBest / 1e4).rounded() / 100) M calls/s")
            let rate = Double(count) / best / 1e6
            print("\((rate * 100).rounded() / 100) M calls/s  (\(matched) matched, pushed \(filter.plan.pushed.count))  \(expression)")
        }
    }
}
