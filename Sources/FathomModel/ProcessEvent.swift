/// What the kernel told about a process (bpf/process.bpf.c): it ran a program, ended, opened a TCP connection or
/// made a TCP socket listen. Attribution keeps their history to name the process behind traffic after it is gone.
public struct ProcessEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case exec = 1, exit = 2, connect = 3, listen = 4
    }

    public var kind: Kind
    /// Wall-clock time of the event, nanoseconds since the Unix epoch.
    public var timestampNanoseconds: UInt64
    /// Wall-clock time the process started (forked), nanoseconds since the Unix epoch.
    public var startNanoseconds: UInt64
    /// The process (thread-group) id and its parent's.
    public var pid: Int32
    public var parentPID: Int32
    /// cgroup v2 id of the process; for `connect` and `listen`, also the cgroup packets of the socket carry.
    public var cgroupID: UInt64
    /// `comm`: the kernel's task name, at most 15 bytes.
    public var command: String
    /// `exec`: the path given to exec.
    public var filename: String?
    /// `connect`, `listen`: the socket's local end (the listener's may be a wildcard address) and remote end.
    public var localIP: String?
    public var localPort: UInt16
    public var remoteIP: String?
    public var remotePort: UInt16

    public init(kind: Kind, timestampNanoseconds: UInt64, startNanoseconds: UInt64, pid: Int32, parentPID: Int32 = 0,
                cgroupID: UInt64, command: String, filename: String? = nil, localIP: String? = nil, localPort: UInt16 = 0,
                remoteIP: String? = nil, remotePort: UInt16 = 0) {
        self.kind = kind
        self.timestampNanoseconds = timestampNanoseconds
        self.startNanoseconds = startNanoseconds
        self.pid = pid
        self.parentPID = parentPID
        self.cgroupID = cgroupID
        self.command = command
        self.filename = filename
        self.localIP = localIP
        self.localPort = localPort
        self.remoteIP = remoteIP
        self.remotePort = remotePort
    }
}
