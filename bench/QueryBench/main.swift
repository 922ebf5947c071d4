import FathomKFL
import FathomModel
import FathomStore
import Foundation

/// `make bench` part for KFL over the calls store (driven by bench/kfl_bench.py, which times SQLite on the same file):
/// builds a store of generated calls, then prints one JSON object per measurement.
///
///     QueryBench DB_PATH [CALLS]
@main
enum QueryBench {
    static let paths = ["/api/v1/checkout", "/api/v1/cart/items", "/healthz", "/api/v2/users/42", "/static/app.js", "/api/v1/orders"]
    static let agents = ["curl/8.0", "Mozilla/5.0", "python-requests/2.31", "Go-http-client/1.1"]
    static let base: Int64 = 1_700_000_000_000

    static func makeCall(_ index: Int) -> Call {
        // Pseudo-random but reproducible spreads, so no field lines up with the insertion order.
        let mix = (index &* 2_654_435_761) & 0xFFFF_FFFF
        return Call(
            id: "n-\(index)", ts: base + Int64(index), node: "n", captureSource: .ebpf, proto: mix % 7 == 0 ? "grpc" : "http",
            src: Endpoint(ip: "10.0.0.\(mix % 250)", port: 40000 + mix % 1000, pod: "frontend-\(mix % 13)", namespace: "shop"),
            dst: Endpoint(ip: "10.0.1.\(mix % 250)", port: 8080, pod: "checkout-\(mix % 50)", namespace: "shop", service: "checkout"),
            method: mix % 3 == 0 ? "POST" : "GET", path: paths[(mix >> 3) % paths.count],
            status: [200, 200, 200, 200, 200, 200, 200, 404, 404, 503][(mix >> 5) % 10], latencyMs: Double(mix % 2000) / 3,
            request: Message(headers: [Header(name: "Host", value: "shop"), Header(name: "User-Agent", value: agents[(mix >> 7) % agents.count]),
                                       Header(name: "Accept", value: "*/*")]),
            http: HTTPInfo(version: "HTTP/1.1", host: "shop"))
    }

    static func seconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func emit(_ fields: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            FileHandle.standardError.write(Data("usage: QueryBench DB_PATH [CALLS]\n".utf8))
            exit(2)
        }
        let count = arguments.count > 2 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000
        let db = try CallsDatabase(path: arguments[1])
        if try db.boundaries().count != count {
            let batch = 10_000
            var encodeSeconds = 0.0
            let start = seconds()
            for first in stride(from: 0, to: count, by: batch) {
                let before = seconds()
                let calls = (first..<min(first + batch, count)).map(makeCall)
                encodeSeconds += seconds() - before
                try db.insert(calls)
            }
            let insertSeconds = seconds() - start - encodeSeconds
            emit(["name": "insert", "calls": count, "calls_per_s": Double(count) / insertSeconds, "batch": batch])
        }
        let now = (base + Int64(count)) * 1_000_000
        let selective: [(String, String)] = [
            ("selective", #"request.path == "/api/v1/checkout" && response.status == 503 && dst.name == "checkout-7""#),
            ("window", #"timestamp > now() - duration("10s") && status_code == 503"#),
        ]
        for (name, expression) in selective {
            let filter = try KFL.compile(expression, now: now)
            var times: [Double] = []
            var returned = 0
            for _ in 0..<51 {
                let start = seconds()
                returned = try db.calls(matching: filter, limit: 100, countBudget: 0).calls.count
                times.append(seconds() - start)
            }
            times.sort()
            emit(["name": name, "expression": expression, "p50_ms": times[times.count / 2] * 1000, "returned": returned,
                  "pushed": filter.plan.pushed.map(\.description)])
        }
        let scans: [(String, String)] = [
            ("scan_columns", #"path.contains("checkout") && elapsed_time > 300000"#),
            ("scan_record", #"request.headers["user-agent"].startsWith("curl") && elapsed_time > 300000"#),
        ]
        for (name, expression) in scans {
            let filter = try KFL.compile(expression, now: now)
            var best = Double.infinity
            var scanned = 0
            var total = 0
            for _ in 0..<3 {
                let start = seconds()
                let page = try db.calls(matching: filter, limit: 100, countBudget: .max)
                best = min(best, seconds() - start)
                precondition(page.totalIsExact, "the scan must read every call")
                (scanned, total) = (page.scanned, page.total)
            }
            emit(["name": name, "expression": expression, "seconds": best, "calls_per_s": Double(scanned) / best,
                  "matched": total])
        }
    }
}
