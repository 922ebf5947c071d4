import Foundation

/// A UDP datagram sent over 127.0.0.1 between two sockets of this process, with the sockets' cookies, so a test can
/// check that the kernel records name the right socket at each end.
struct LoopbackExchange {
    var senderCookie: UInt64
    var receiverCookie: UInt64

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func udp(marker: [UInt8]) throws -> LoopbackExchange {
        let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            close(receiver)
            close(sender)
        }
        guard receiver >= 0, sender >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(receiver, $0, length) == 0 && getsockname(receiver, $0, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "bind: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sent = marker.withUnsafeBytes { payload in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, payload.baseAddress, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == marker.count else { throw Failure(description: "sendto: \(String(cString: strerror(errno)))") }
        var buffer = [UInt8](repeating: 0, count: 2048)
        guard recv(receiver, &buffer, buffer.count, 0) == marker.count else {
            throw Failure(description: "the datagram did not arrive: \(String(cString: strerror(errno)))")
        }
        // The drainer picks records up on its timer; give it a few intervals.
        usleep(100_000)
        return LoopbackExchange(senderCookie: try cookie(sender), receiverCookie: try cookie(receiver))
    }

    static func cookie(_ fd: Int32) throws -> UInt64 {
        var value: UInt64 = 0
        var size = socklen_t(MemoryLayout<UInt64>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_COOKIE, &value, &size) == 0 else {
            throw Failure(description: "SO_COOKIE: \(String(cString: strerror(errno)))")
        }
        return value
    }
}
