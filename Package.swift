// swift-tools-version:6.1
import PackageDescription

// Data flows one way: kernel (bpf/) → CFathomBPF / CFathomPcap → FathomCapture → FathomRecording + FathomDissect
// → calls store → FathomKFL → FathomAgent (HTTP API, MCP) → the `fathom` executable.
// Kernel-facing targets (CFathomBPF, CFathomPcap, FathomCapture) are the only ones that need root to exercise.
let package = Package(
    name: "Fathom",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "fathom", targets: ["fathom"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
    ],
    targets: [
        // libbpf and the embedded BPF objects. The only module that includes libbpf headers.
        .target(
            name: "CFathomBPF",
            cSettings: [.unsafeFlags(["-std=gnu23"])],
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]
        ),
        // libpcap, kept apart: its headers clash with libbpf's (struct bpf_insn, struct bpf_program).
        .target(name: "CFathomPcap", linkerSettings: [.linkedLibrary("pcap")]),

        // Pure code: no privileges, no system libraries.
        .target(name: "FathomModel"),
        // Exclusivity is checked at compile time; the per-packet paths skip the run-time checks.
        .target(
            name: "FathomRecording", dependencies: ["FathomModel"],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // Per-packet code mutates class state in tight loops: dynamic exclusivity checks cost ~10% of throughput.
        .target(
            name: "FathomDissect", dependencies: ["FathomModel", "FathomRecording"],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(name: "FathomKFL", dependencies: ["FathomModel"]),
        // The calls databases (real-time and per snapshot dissection): SQLite in WAL mode.
        .target(name: "FathomStore", dependencies: ["FathomModel", "FathomKFL", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")]),

        // A small HTTP/1.1 client on NIO (streamed bodies, optional TLS): the Kubernetes API and the CLI's calls to an
        // agent. No FoundationNetworking, whose libcurl cannot be linked statically from Debian's packages.
        .target(
            name: "FathomHTTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Who is on each end of a flow: cgroup → container → pod, /proc, and the Kubernetes API.
        .target(
            name: "FathomAttribution",
            dependencies: [
                "FathomModel", "FathomHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Kernel-facing capture: BPF loader, ring-buffer drainer, libpcap fallback.
        .target(
            name: "FathomCapture",
            dependencies: [
                "CFathomBPF", "FathomModel", "FathomRecording",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // The libpcap fallback, a module of its own so libpcap's headers never meet libbpf's.
        .target(
            name: "FathomPcapCapture",
            dependencies: [
                "CFathomPcap", "FathomModel", "FathomRecording",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FathomAgent",
            dependencies: [
                "FathomCapture", "FathomPcapCapture", "FathomRecording", "FathomModel", "FathomDissect", "FathomStore",
                "FathomKFL", "FathomMCP", "FathomAttribution",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The MCP server: tools shaped around the investigation workflow, answered by an agent's HTTP API.
        .target(
            name: "FathomMCP",
            dependencies: [
                "FathomHTTPClient",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "fathom",
            dependencies: [
                "FathomAgent", "FathomCapture", "FathomRecording", "FathomDissect", "FathomKFL", "FathomMCP", "FathomStore",
                "FathomAttribution",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // `make bench`: KFL over a store of 1M calls, against SQLite (bench/kfl_bench.py drives it).
        .executableTarget(name: "QueryBench", dependencies: ["FathomStore", "FathomKFL", "FathomModel"], path: "bench/QueryBench"),

        .testTarget(name: "FathomModelTests", dependencies: ["FathomModel"]),
        .testTarget(name: "FathomAttributionTests", dependencies: ["FathomAttribution"]),
        .testTarget(name: "FathomHTTPClientTests", dependencies: ["FathomHTTPClient", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "FathomRecordingTests", dependencies: ["FathomRecording"]),
        .testTarget(name: "FathomDissectTests", dependencies: ["FathomDissect"], exclude: ["Fixtures", "Benchmark"]),
        .testTarget(name: "FathomKFLTests", dependencies: ["FathomKFL"]),
        .testTarget(name: "FathomStoreTests", dependencies: ["FathomStore"]),
        .testTarget(name: "FathomCaptureTests", dependencies: ["FathomCapture"]),
        .testTarget(name: "FathomAgentTests", dependencies: ["FathomAgent"]),
    ],
    swiftLanguageModes: [.v6]
)
