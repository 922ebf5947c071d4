import FathomModel

extension Attributor {
    /// Names both ends of `call` as of its timestamp. An end that is a local socket capture saw (its cgroup id, and
    /// pid for TLS plaintext, in `owners`) is named from that local evidence first, then from the IP table.
    public func attribute(_ call: inout Call, owners: SocketOwners?) {
        let timestampMs = call.ts
        attribute(&call.src, at: timestampMs, owners: owners)
        attribute(&call.dst, at: timestampMs, owners: owners)
    }

    /// Names both ends of `flow` as of its first packet, the same way.
    public func attribute(_ flow: inout Flow, owners: SocketOwners?) {
        let timestampMs = flow.start
        attribute(&flow.src, at: timestampMs, owners: owners)
        attribute(&flow.dst, at: timestampMs, owners: owners)
    }

    private func attribute(_ endpoint: inout Endpoint, at timestampMs: Int64, owners: SocketOwners?) {
        var owner: SocketOwners.Owner?
        if let owners, let key = IPKey(endpoint.ip), let port = UInt16(exactly: endpoint.port) {
            owner = owners.owner(ip: key, port: port)
        }
        attribute(&endpoint, timestampMs: timestampMs, cgroupID: owner?.cgroupID, pid: owner?.pid)
    }
}
