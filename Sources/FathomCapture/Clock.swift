import Glibc

/// Kernel stamps are CLOCK_MONOTONIC (bpf_ktime_get_ns); recordings want wall-clock time.
public enum Clock {
    public static func nanoseconds(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Wall clock minus monotonic clock, now. Re-read periodically so NTP steps are followed.
    public static func monotonicToRealtimeOffset() -> Int64 {
        nanoseconds(CLOCK_REALTIME) - nanoseconds(CLOCK_MONOTONIC)
    }

    public static func realtimeNanoseconds() -> UInt64 { UInt64(nanoseconds(CLOCK_REALTIME)) }
}
