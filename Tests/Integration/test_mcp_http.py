"""Issue 7 (MCP over Streamable HTTP) through the official Python MCP client: every tool against its output schema,
cursors, error results, DNS-rebinding and token checks, and the byte budget on a store of 100 K calls over both
transports."""
import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import jsonschema
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from conftest import FATHOM, run
from test_api import SCOPE, checkout_traffic  # noqa: F401  (the fixture: an agent with 9 dissected calls, 2 failing)
from test_flows import closed_flows  # noqa: F401
from test_mcp import with_session

BUDGET = 48 * 1024
TOOLS = {"get_data_boundaries", "get_api_stats", "list_api_calls", "get_api_call", "list_fields", "get_dissection_status",
         "enable_dissection", "disable_dissection", "list_l4_flows", "get_l4_flow_summary"}


def over_http(agent, body, headers=None):
    async def go():
        client = create_mcp_http_client(headers=headers) if headers else None
        async with streamable_http_client(f"http://127.0.0.1:{agent.port}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return await body(session, init)
    return asyncio.run(asyncio.wait_for(go(), 120))


def result_bytes(result):
    return len(json.dumps(result.structured_content or {})) + sum(len(c.text) for c in result.content)


def check_schema(tool, result):
    assert not result.is_error, (tool.name, result.content[0].text)
    jsonschema.validate(result.structured_content, tool.output_schema)


def test_every_tool_over_http_matches_its_schema(closed_flows):
    async def body(session, init):
        assert init.protocol_version == "2025-11-25"
        assert "get_l4_flow_summary" in init.instructions
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) >= TOOLS
        for tool in tools.values():
            assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
        for tool in (tools[name] for name in TOOLS):  # the snapshot tools' annotations: test_snapshots.py
            assert tool.annotations.read_only_hint is (tool.name not in {"enable_dissection", "disable_dissection"})
            assert tool.annotations.destructive_hint is False
        listed = await session.call_tool("list_api_calls", {"kfl": SCOPE, "limit": 5})
        call_id = listed.structured_content["calls"][0]["id"]
        arguments = {
            "get_data_boundaries": {}, "get_api_stats": {"kfl": SCOPE, "group_by": "endpoint"},
            "list_api_calls": {"kfl": 'request.path=="/api/v1/checkout" and response.status==503'},
            "get_api_call": {"id": call_id}, "list_fields": {"group": "flow"}, "get_dissection_status": {},
            "disable_dissection": {}, "enable_dissection": {},
            "list_l4_flows": {"kfl": SCOPE}, "get_l4_flow_summary": {"kfl": SCOPE},
        }
        results = {}
        for name in sorted(TOOLS):
            results[name] = await session.call_tool(name, arguments[name])
            check_schema(tools[name], results[name])
            assert result_bytes(results[name]) <= 2 * BUDGET
        assert [c["status"] for c in results["list_api_calls"].structured_content["calls"]] == [503, 503]
        assert {f["name"] for f in results["list_fields"].structured_content["fields"]} >= {"transport", "bytes", "resets"}
        flow_list = results["list_l4_flows"]
        assert flow_list.structured_content["total"] == 9
        assert flow_list.content[0].text.startswith("covers:") and flow_list.content[0].text.count(" -> 10.213.7.2:8080 ") == 9
        summary = results["get_l4_flow_summary"]
        assert summary.structured_content["totals"]["flows"] == 9 and "TCP handshake RTT" in summary.content[0].text
        assert "untrusted-data" in results["get_api_call"].content[0].text
        assert results["enable_dissection"].structured_content == {"enabled": True}
        # Top talkers through the tool, and the Kubeshark-style namespace shortcut.
        talkers = await session.call_tool("list_l4_flows", {"kfl": SCOPE, "aggregate": "dst"})
        check_schema(tools["list_l4_flows"], talkers)
        assert talkers.structured_content["groups"][0]["flows"] == 9
        none = await session.call_tool("list_l4_flows", {"ns": "no-such-namespace"})
        assert none.structured_content["total"] == 0
        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert "find_errors" in prompts
    over_http(closed_flows, body)


def test_cursors_and_error_results_over_http(closed_flows):
    async def body(session, _):
        for tool, scope in (("list_api_calls", SCOPE), ("list_l4_flows", SCOPE)):
            seen, cursor = [], None
            for _ in range(10):
                args = {"limit": 4, "kfl": scope} | ({"cursor": cursor} if cursor else {})
                page = (await session.call_tool(tool, args)).structured_content
                seen += [item["id"] for item in page.get("calls", page.get("flows", []))]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert len(seen) == 9 == len(set(seen)), tool
        cases = [
            ("list_api_calls", {"kfl": "response.stauts == 503"}, "did you mean `response.status`"),
            ("list_api_calls", {"limit": 0}, "from 1 to 1000"),
            ("list_l4_flows", {"aggregate": "colour"}, "must be one of"),
            ("list_l4_flows", {"kfl": "response.status == 503"}, "not a flow field"),
            ("list_l4_flows", {"limit": 5000}, "from 1 to 1000"),
            ("get_l4_flow_summary", {"colour": "red"}, "valid: "),
            ("get_api_call", {}, "`id` is required"),
            ("no_such_tool", {}, "no tool named"),
        ]
        for tool, args, needle in cases:
            result = await session.call_tool(tool, args)
            assert result.is_error, (tool, args)
            assert needle in result.content[0].text, (tool, args, result.content[0].text)
        assert not (await session.call_tool("get_dissection_status", {})).is_error
    over_http(closed_flows, body)


def post(agent, body, headers):
    request = urllib.request.Request(f"http://127.0.0.1:{agent.port}/mcp", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"} | headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def test_http_transport_guards_origin_host_sessions_and_size(checkout_traffic):
    agent = checkout_traffic
    assert post(agent, INITIALIZE, {"Origin": "https://evil.example"})[0] == 403
    assert post(agent, INITIALIZE, {"Host": f"rebind.example:{agent.port}"})[0] == 421
    status, headers, _ = post(agent, INITIALIZE, {"Origin": f"http://localhost:{agent.port}"})
    assert status == 200
    session = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert post(agent, listing, {})[0] == 400  # no session header
    assert post(agent, listing, {"Mcp-Session-Id": "not-a-session"})[0] == 404
    status, _, answer = post(agent, listing, {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    assert status == 200 and {t["name"] for t in json.loads(answer)["result"]["tools"]} >= TOOLS
    assert post(agent, listing, {"Mcp-Session-Id": session, "MCP-Protocol-Version": "1999-01-01"})[0] == 400
    big = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_api_calls", "arguments": {"kfl": "x" * (2 << 20)}}}
    assert post(agent, big, {"Mcp-Session-Id": session})[0] == 413
    assert post(agent, {"not": "json-rpc"}, {"Mcp-Session-Id": session})[0] == 400
    delete = urllib.request.Request(f"http://127.0.0.1:{agent.port}/mcp", method="DELETE", headers={"Mcp-Session-Id": session})
    with urllib.request.urlopen(delete, timeout=10) as r:
        assert r.status == 204
    assert post(agent, listing, {"Mcp-Session-Id": session})[0] == 404
    # The server is still there.
    assert post(agent, INITIALIZE, {})[0] == 200


def test_bearer_token_guards_http_mcp(agents, tmp_path, root):
    agent = agents(tmp_path / "data", "--token", "s3cret")
    assert post(agent, INITIALIZE, {})[0] == 401

    async def body(session, _):
        return (await session.call_tool("get_dissection_status", {})).structured_content
    assert over_http(agent, body, headers={"Authorization": "Bearer s3cret"}) == {"enabled": True}


@pytest.fixture
def big_store(agents, tmp_path, root):
    """An agent over a store of 100 K generated calls and 10 K flows, dated after its start so retention keeps them."""
    data = tmp_path / "data"
    data.mkdir()
    newest = int(time.time() * 1000) + 10 * 60 * 1000
    started = time.monotonic()
    run(FATHOM, "synthetic-store", "--db", str(data / "calls.db"), "--calls", "100000", "--newest-ms", str(newest))
    print(f"100 K calls stored in {time.monotonic() - started:.1f} s")
    return agents(data, "--no-dissection")


def test_no_result_exceeds_the_byte_budget_on_100k_calls(big_store):
    worst = {}

    def body_for(transport):
        async def body(session, _):
            tools = {t.name: t for t in (await session.list_tools()).tools}
            cases = [
                ("list_api_calls", {"limit": 1000, "format": "full"}), ("list_api_calls", {"limit": 1000}),
                ("list_api_calls", {"kfl": 'path == "/api/v1/checkout" && status_code == 503', "limit": 1000}),
                ("get_api_stats", {"group_by": "endpoint"}), ("get_api_stats", {"group_by": "service"}),
                ("get_api_call", {"id": "synthetic-99999", "max_payload": 65536}),
                ("list_fields", {}), ("get_data_boundaries", {}),
                ("list_l4_flows", {"limit": 1000}), ("list_l4_flows", {"limit": 1000, "aggregate": "pair"}),
                ("get_l4_flow_summary", {}),
            ]
            for name, args in cases:
                result = await session.call_tool(name, args)
                check_schema(tools[name], result)
                size = result_bytes(result)
                worst[(transport, name)] = max(worst.get((transport, name), 0), size)
                assert size <= 2 * BUDGET, (transport, name, args, size)
                text = sum(len(c.text) for c in result.content)
                assert text <= BUDGET + 1024, (transport, name, args, text)
            page = (await session.call_tool("list_api_calls", {"limit": 1000, "format": "full"})).structured_content
            assert page["truncated"] and page["next_cursor"] and 0 < page["returned"] < 1000
            assert page["total"] > page["returned"]
            nxt = (await session.call_tool("list_api_calls", {"limit": 1000, "format": "full",
                                                              "cursor": page["next_cursor"]})).structured_content
            assert not set(c["id"] for c in nxt["calls"]) & set(c["id"] for c in page["calls"])
        return body

    over_http(big_store, body_for("http"))
    with_session(big_store, body_for("stdio"), timeout=120)
    print("largest results (bytes):", json.dumps({f"{t}:{n}": s for (t, n), s in sorted(worst.items())}))
