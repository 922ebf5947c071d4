/// Anything that contributes metric families to /metrics.
public protocol MetricsSource: AnyObject {
    func metrics() -> [Metric]
}
