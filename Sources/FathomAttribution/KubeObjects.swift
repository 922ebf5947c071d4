import Foundation

/// The fields of the Kubernetes API's JSON that attribution reads; everything else is skipped by the decoder.
enum Kube {
    struct Meta: Decodable {
        var name: String
        var namespace: String?
        var uid: String?
        var resourceVersion: String?
        var labels: [String: String]?
        var creationTimestamp: String?
    }
    struct ListMeta: Decodable {
        var resourceVersion: String?
        var `continue`: String?
    }
    struct List<Item: Decodable>: Decodable {
        var metadata: ListMeta
        var items: [Item]?
    }
    /// The `type` of a watch event, decoded first so an ERROR's Status object is read as one.
    struct EventType: Decodable { var type: String }
    struct Event<Object: Decodable>: Decodable {
        var type: String
        var object: Object
    }
    struct Status: Decodable {
        var code: Int?
        var reason: String?
        var message: String?
    }
    /// BOOKMARK events carry only the object's resource version.
    struct Bookmark: Decodable { var metadata: BookmarkMeta }
    struct BookmarkMeta: Decodable { var resourceVersion: String? }

    struct Pod: Decodable {
        struct Spec: Decodable {
            var nodeName: String?
            var hostNetwork: Bool?
        }
        struct IP: Decodable { var ip: String }
        struct ContainerStatus: Decodable {
            var name: String
            var containerID: String?
        }
        struct Status: Decodable {
            var phase: String?
            var podIP: String?
            var podIPs: [IP]?
            var containerStatuses: [ContainerStatus]?
            var initContainerStatuses: [ContainerStatus]?
            var ephemeralContainerStatuses: [ContainerStatus]?
        }
        var metadata: Meta
        var spec: Spec?
        var status: Status?

        var record: PodRecord {
            let status = status ?? Status()
            // Host-network pods share their node's IP (named by the node entry); terminated pods released theirs.
            let released = spec?.hostNetwork == true || status.phase == "Succeeded" || status.phase == "Failed"
            var ips = (status.podIPs ?? []).map(\.ip)
            if ips.isEmpty, let ip = status.podIP, !ip.isEmpty { ips = [ip] }
            let statuses = (status.containerStatuses ?? []) + (status.initContainerStatuses ?? [])
                + (status.ephemeralContainerStatuses ?? [])
            return PodRecord(
                namespace: metadata.namespace ?? "default", name: metadata.name, uid: metadata.uid ?? "",
                node: spec?.nodeName ?? "", labels: metadata.labels ?? [:], ips: released ? [] : ips,
                containers: statuses.compactMap { s in
                    guard let id = s.containerID, !id.isEmpty else { return nil }
                    return ContainerRef(name: s.name, id: String(CgroupIdentity.bareContainerID(id)))
                },
                createdMs: metadata.creationTimestamp.flatMap(Kube.milliseconds) ?? 0)
        }
    }

    struct Service: Decodable {
        struct Spec: Decodable {
            var clusterIP: String?
            var clusterIPs: [String]?
        }
        var metadata: Meta
        var spec: Spec?

        var record: ServiceRecord {
            var ips = spec?.clusterIPs ?? []
            if ips.isEmpty, let ip = spec?.clusterIP, !ip.isEmpty { ips = [ip] }
            return ServiceRecord(namespace: metadata.namespace ?? "default", name: metadata.name,
                                 clusterIPs: ips.filter { $0 != "None" },
                                 createdMs: metadata.creationTimestamp.flatMap(Kube.milliseconds) ?? 0)
        }
    }

    struct EndpointSlice: Decodable {
        struct TargetRef: Decodable {
            var kind: String?
            var name: String?
        }
        struct Endpoint: Decodable { var targetRef: TargetRef? }
        var metadata: Meta
        var endpoints: [Endpoint]?

        var record: EndpointSliceRecord {
            EndpointSliceRecord(
                namespace: metadata.namespace ?? "default", name: metadata.name,
                service: metadata.labels?["kubernetes.io/service-name"] ?? "",
                pods: (endpoints ?? []).compactMap { e in
                    guard let ref = e.targetRef, ref.kind == nil || ref.kind == "Pod" else { return nil }
                    return ref.name
                })
        }
    }

    struct Node: Decodable {
        struct Address: Decodable {
            var type: String
            var address: String
        }
        struct Status: Decodable { var addresses: [Address]? }
        var metadata: Meta
        var status: Status?

        var record: NodeRecord {
            NodeRecord(name: metadata.name,
                       addresses: (status?.addresses ?? []).filter { $0.type.hasSuffix("IP") }.map(\.address),
                       labels: metadata.labels ?? [:],
                       createdMs: metadata.creationTimestamp.flatMap(Kube.milliseconds) ?? 0)
        }
    }

    struct Namespace: Decodable { var metadata: Meta }

    /// RFC 3339 (`2026-11-21T09:30:00Z`, optional fraction and offset) → milliseconds since the epoch.
    static func milliseconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<from + count {
                guard i < b.count, b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard let y = number(0, 4), let mo = number(5, 2), let d = number(8, 2), let h = number(11, 2),
            let mi = number(14, 2), let s = number(17, 2), (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var i = 19
        var millis: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale: Int64 = 100
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                millis += Int64(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = number(i + 1, 2), let om = number(i + 4, 2) {
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        }
        // Days from civil (Howard Hinnant's algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 86_400 + h * 3600 + mi * 60 + s) - offset) * 1000 + millis
    }
}
