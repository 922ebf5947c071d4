import ArgumentParser

@main
struct Fathom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "eBPF capture agent: records the node's traffic, dissects it into API calls, answers questions about them.",
        subcommands: [
            AgentCommand.self, AttributionCommand.self, DissectCommand.self, MCPCommand.self, PacketsCommand.self,
            QueryCommand.self, SelfTestCommand.self, SnapshotCommand.self, TLSStatusCommand.self, SyntheticStoreCommand.self,
        ]
    )
}
