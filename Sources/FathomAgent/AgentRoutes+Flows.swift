import Hummingbird

/// `/mcp/flows` and `/mcp/flows/summary`: L4 connections, top talkers and their totals.
extension AgentRoutes {
    func addFlowRoutes(to router: Router<BasicRequestContext>, api: LocalAPI) {
        router.get("/mcp/flows") { request, _ in
            Self.answer {
                let q = QueryParameters(request.uri)
                var list = LocalAPI.ListFlowsRequest()
                list.kfl = q.string("kfl") ?? ""
                let aggregate = try q.choice("aggregate", LocalAPI.FlowAggregate.allCases.map(\.rawValue), default: "none")
                list.aggregate = LocalAPI.FlowAggregate(rawValue: aggregate) ?? .none
                list.limit = try q.int("limit", default: LocalAPI.defaultLimit, in: 1...LocalAPI.maximumLimit)
                list.startMs = try q.optionalInt("start")
                list.endMs = try q.optionalInt("end")
                list.cursor = try q.optionalInt("cursor")
                return Self.json(try api.listFlows(list))
            }
        }
        router.get("/mcp/flows/summary") { request, _ in
            Self.answer {
                let q = QueryParameters(request.uri)
                return Self.json(
                    try api.flowSummary(kfl: q.string("kfl") ?? "", startMs: try q.optionalInt("start"), endMs: try q.optionalInt("end")))
            }
        }
    }
}
