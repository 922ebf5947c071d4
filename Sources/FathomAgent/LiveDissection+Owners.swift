import FathomDissect
import FathomModel

/// Hands attribution the socket owner of each decoded packet, but each local socket at most about once a second:
/// attribution keeps one owner per socket with a last-seen time used only for idling out, so the packets between
/// add nothing, and a hash-table update per packet was the largest part of dissecting a packet flood. Recent sockets
/// sit in a small direct-mapped table; a socket whose owner changes (a new cgroup or process) is passed on at once.
final class SocketOwnerSampler: DecodedPacketObserver {
    private struct Sighting: Equatable {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var port: UInt16 = 0
        var cgroupID: UInt64 = 0
        var processID: UInt32 = 0
    }

    private static let slots = 256
    /// Passed on again once this old, ms.
    static let refreshMilliseconds: UInt64 = 1000
    private let attribution: IngestAttribution
    private var sightings = [Sighting](repeating: Sighting(), count: SocketOwnerSampler.slots)
    private var sightingMilliseconds = [UInt64](repeating: 0, count: SocketOwnerSampler.slots)

    init(attribution: IngestAttribution) {
        self.attribution = attribution
    }

    func observe(_ metadata: PacketMetadata, _ packet: DecodedPacket) {
        guard metadata.cgroupID != 0 || metadata.processID != 0, metadata.direction != .unknown else { return }
        let local = metadata.direction == .outbound ? packet.source : packet.destination
        let port = metadata.direction == .outbound ? packet.sourcePort : packet.destinationPort
        let sighting = Sighting(
            high: local.high, low: local.low, port: port, cgroupID: metadata.cgroupID, processID: metadata.processID)
        let ms = metadata.timestampNanoseconds / 1_000_000
        let slot = Int(truncatingIfNeeded: (local.low ^ local.high ^ UInt64(port) &* 0x9E37_79B9) % UInt64(Self.slots))
        if sightings[slot] == sighting, ms >= sightingMilliseconds[slot], ms - sightingMilliseconds[slot] < Self.refreshMilliseconds {
            return
        }
        sightings[slot] = sighting
        sightingMilliseconds[slot] = ms
        attribution.observe(metadata, packet)
    }
}
