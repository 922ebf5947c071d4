import Foundation
import Logging
import NIOCore
import Synchronization

/// Keeps a `WorkloadTable` in step with the Kubernetes API: for pods, services, EndpointSlices, namespaces and nodes,
/// list (paged), then watch from the list's resource version; a watch that ends is resumed from the last version
/// seen, a `410 Gone` re-lists, errors back off up to 30 s.
public final class KubeWatcher: Sendable {
    public let table: WorkloadTable
    let client: KubeHTTPClient
    let attributor: Attributor?
    let logger: Logger
    /// Objects per list page.
    let pageSize: Int
    /// Server-side timeout of one watch request; the watch is then resumed.
    let watchTimeoutSeconds: Int
    private let listed = Mutex<Set<String>>([])
    private let counters = Mutex<[String: Int]>([:])

    public init(config: KubeConfig, table: WorkloadTable, attributor: Attributor? = nil,
                logger: Logger = Logger(label: "fathom.kubernetes"), pageSize: Int = 500, watchTimeoutSeconds: Int = 300) throws {
        self.client = try KubeHTTPClient(config: config)
        self.table = table
        self.attributor = attributor
        self.logger = logger
        self.pageSize = pageSize
        self.watchTimeoutSeconds = watchTimeoutSeconds
    }

    /// Lists every resource once (no watch): what `fathom workloads` shows.
    public func listOnce() async throws {
        attributor?.setClusterSynced(false)
        for resource in resources {
            _ = try await list(resource)
        }
        attributor?.setClusterSynced(true)
    }

    /// Lists then watches every resource until the task is cancelled.
    public func run() async {
        attributor?.setClusterSynced(false)
        await withTaskGroup(of: Void.self) { group in
            for resource in resources {
                group.addTask { await self.follow(resource) }
            }
        }
    }

    /// Events applied so far, by "kind/type" ("pods/ADDED", "pods/relist", …), for metrics and tests.
    public var eventCounts: [String: Int] { counters.withLock { $0 } }

    // MARK: One resource

    struct Resource: Sendable {
        let name: String
        let path: String
        /// Starts a list: pages are decoded as they come and applied together at the end, so objects missing from
        /// the whole list are deleted once.
        let beginList: @Sendable () -> ListAccumulator
        /// Applies one watch event line (ADDED, MODIFIED, DELETED); returns the object's resource version.
        let apply: @Sendable (String, Data, Int64) throws -> String?
    }

    /// The pages of one list, decoded, waiting to be applied.
    struct ListAccumulator {
        let addPage: ([UInt8]) throws -> (version: String?, continueToken: String?)
        /// Applies everything at `observedMs`; returns the object count.
        let finish: (Int64) -> Int
    }

    struct Gone: Error {}

    private func follow(_ resource: Resource) async {
        var version: String?
        var backoff: Duration = .seconds(1)
        while !Task.isCancelled {
            do {
                if version == nil {
                    version = try await list(resource)
                }
                try await watch(resource, from: &version)
                backoff = .seconds(1)
            } catch is Gone {
                count(resource.name + "/relist")
                logger.info("watch of \(resource.name) expired (410 Gone): listing again")
                version = nil
            } catch {
                if Task.isCancelled { return }
                count(resource.name + "/error")
                logger.warning("\(resource.name): \(error); retrying in \(backoff)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    /// Lists all pages and replaces the table's objects of that kind; returns the resource version to watch from.
    private func list(_ resource: Resource) async throws -> String? {
        var continueToken: String?
        var version: String?
        let accumulator = resource.beginList()
        let observed = Self.nowMs()
        for _ in 0..<1_000_000 {
            var query = "\(resource.path)?limit=\(pageSize)"
            if let continueToken { query += "&continue=\(Self.escape(continueToken))" }
            let page = try accumulator.addPage(try await client.getAll(query))
            version = page.version
            continueToken = page.continueToken
            if continueToken?.isEmpty ?? true { break }
        }
        count(resource.name + "/listed", by: accumulator.finish(observed))
        let done = listed.withLock { set -> Bool in
            set.insert(resource.name)
            return set.count == Self.resourceCount
        }
        if done { attributor?.setClusterSynced(true) }
        return version
    }

    private func watch(_ resource: Resource, from version: inout String?) async throws {
        var query = "\(resource.path)?watch=1&allowWatchBookmarks=true&timeoutSeconds=\(watchTimeoutSeconds)"
        if let version { query += "&resourceVersion=\(Self.escape(version))" }
        let (status, body) = try await client.get(query)
        if status == 410 { throw Gone() }
        guard status == 200 else {
            var text: [UInt8] = []
            for try await chunk in body where text.count < 2000 { text.append(contentsOf: chunk.readableBytesView) }
            throw KubeHTTPError(status: status, body: String(decoding: text, as: UTF8.self))
        }
        var pending: [UInt8] = []
        for try await chunk in body {
            pending.append(contentsOf: chunk.readableBytesView)
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(pending[start..<newline])
                start = newline + 1
                if line.isEmpty { continue }
                if let next = try handle(line, resource) { version = next }
            }
            pending.removeFirst(start)
            if pending.count > 64 << 20 { throw KubeHTTPError(status: status, body: "watch event larger than 64 MiB") }
        }
    }

    /// One watch event line: returns the resource version to resume from.
    private func handle(_ line: Data, _ resource: Resource) throws -> String? {
        let type = try JSONDecoder().decode(Kube.EventType.self, from: line).type
        switch type {
        case "ERROR":
            let status = try JSONDecoder().decode(Kube.Event<Kube.Status>.self, from: line).object
            if status.code == 410 || status.reason == "Expired" || status.reason == "Gone" { throw Gone() }
            throw KubeHTTPError(status: status.code ?? 0, body: status.message ?? "watch error")
        case "BOOKMARK":
            return try JSONDecoder().decode(Kube.Event<Kube.Bookmark>.self, from: line).object.metadata.resourceVersion
        default:
            // Counted once applied: a reader of the counts (the CLI's --watch-events) then sees the table with it.
            let version = try resource.apply(type, line, Self.nowMs())
            count(resource.name + "/" + type)
            return version
        }
    }

    private func count(_ key: String, by n: Int = 1) {
        counters.withLock { $0[key, default: 0] += n }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    // MARK: The five resources

    var resources: [Resource] {
        let table = self.table
        return [
            Self.resource("pods", "/api/v1/pods", Kube.Pod.self,
                          replace: { table.replacePods($0.map(\.record), observedMs: $1) },
                          upsert: { table.upsert($0.record, observedMs: $1) },
                          delete: { table.deletePod(namespace: $0.metadata.namespace ?? "default", name: $0.metadata.name, observedMs: $1) }),
            Self.resource("services", "/api/v1/services", Kube.Service.self,
                          replace: { table.replaceServices($0.map(\.record), observedMs: $1) },
                          upsert: { table.upsert($0.record, observedMs: $1) },
                          delete: { table.deleteService(namespace: $0.metadata.namespace ?? "default", name: $0.metadata.name, observedMs: $1) }),
            Self.resource("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", Kube.EndpointSlice.self,
                          replace: { items, _ in table.replaceSlices(items.map(\.record)) },
                          upsert: { item, _ in table.upsert(item.record) },
                          delete: { item, _ in table.deleteSlice(namespace: item.metadata.namespace ?? "default", name: item.metadata.name) }),
            Self.resource("namespaces", "/api/v1/namespaces", Kube.Namespace.self,
                          replace: { items, _ in table.replaceNamespaces(items.map(\.metadata.name)) },
                          upsert: { item, _ in table.addNamespace(item.metadata.name) },
                          delete: { _, _ in }),
            Self.resource("nodes", "/api/v1/nodes", Kube.Node.self,
                          replace: { table.replaceNodes($0.map(\.record), observedMs: $1) },
                          upsert: { table.upsert($0.record, observedMs: $1) },
                          delete: { table.deleteNode(name: $0.metadata.name, observedMs: $1) }),
        ]
    }

    static let resourceCount = 5

    /// A resource whose list replaces the table's objects and whose events upsert or delete one object.
    static func resource<Object: Decodable>(
        _ name: String, _ path: String, _ type: Object.Type,
        replace: @escaping @Sendable ([Object], Int64) -> Void,
        upsert: @escaping @Sendable (Object, Int64) -> Void,
        delete: @escaping @Sendable (Object, Int64) -> Void
    ) -> Resource {
        Resource(
            name: name, path: path,
            beginList: {
                let pages = PageBuffer<Object>()
                return ListAccumulator(
                    addPage: { bytes in
                        let list = try JSONDecoder().decode(Kube.List<Object>.self, from: Data(bytes))
                        pages.objects += list.items ?? []
                        return (list.metadata.resourceVersion, list.metadata.continue)
                    },
                    finish: { observedMs in
                        replace(pages.objects, observedMs)
                        return pages.objects.count
                    })
            },
            apply: { type, line, observedMs in
                let event = try JSONDecoder().decode(Kube.Event<Object>.self, from: line)
                if type == "DELETED" { delete(event.object, observedMs) } else { upsert(event.object, observedMs) }
                return (try? JSONDecoder().decode(Kube.Event<Kube.Bookmark>.self, from: line))?.object.metadata.resourceVersion
            })
    }
}

/// The decoded objects of the pages of one list.
private final class PageBuffer<Object> {
    var objects: [Object] = []
}
