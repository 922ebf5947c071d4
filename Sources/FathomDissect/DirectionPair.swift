/// One value per direction of a flow (0: low → high, 1: high → low, as `FlowKey` orders them), stored inline.
/// Per-packet code updates these on every packet: an array would cost a heap buffer per flow and a uniqueness and
/// bounds check on every write.
struct DirectionPair<Element> {
    private var low: Element
    private var high: Element

    init(repeating value: Element) {
        low = value
        high = value
    }

    /// The value of `direction`, which must be 0 or 1.
    subscript(direction: Int) -> Element {
        get {
            precondition(direction == 0 || direction == 1, "a direction is 0 or 1")
            return direction == 0 ? low : high
        }
        _modify {
            precondition(direction == 0 || direction == 1, "a direction is 0 or 1")
            if direction == 0 { yield &low } else { yield &high }
        }
    }
}
