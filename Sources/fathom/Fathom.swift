import ArgumentParser

@main
struct Fathom: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "eBPF capture agent: records the node's traffic, dissects it into API calls, answers questions about them."
    )
}
