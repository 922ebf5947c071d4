"""Issue 7 (MCP) through the official Python MCP client over stdio: every tool, its schema, errors, paging, budget."""
import asyncio
import json

import pytest

from conftest import FATHOM
from test_api import SCOPE, checkout_traffic  # noqa: F401  (the fixture: an agent with 9 dissected calls, 2 failing)


from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

BUDGET = 48 * 1024


def with_session(agent, body, timeout=60):
    """Runs `body(session, init)` in an MCP session over stdio (`fathom mcp`) with the agent."""
    async def go():
        params = StdioServerParameters(command=FATHOM, args=["mcp", "--url", f"http://127.0.0.1:{agent.port}"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return await body(session, init)
    return asyncio.run(asyncio.wait_for(go(), timeout))


def test_tools_follow_the_investigation_workflow(checkout_traffic):
    async def body(session, init):
        assert "get_data_boundaries" in init.instructions and "untrusted" in init.instructions
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) >= {"get_data_boundaries", "get_api_stats", "list_api_calls", "get_api_call", "list_fields",
                              "get_dissection_status", "enable_dissection", "disable_dissection"}
        for tool in tools.values():
            assert tool.output_schema and tool.input_schema["type"] == "object"
        assert tools["list_api_calls"].annotations.read_only_hint is True
        assert tools["disable_dissection"].annotations.read_only_hint is False

        boundaries = await session.call_tool("get_data_boundaries", {})
        assert not boundaries.is_error and boundaries.structured_content["nodes"][0]["calls"]["count"] >= 9

        stats = await session.call_tool("get_api_stats", {"group_by": "status", "kfl": SCOPE})
        assert {g["group"]: g["count"] for g in stats.structured_content["groups"]} == {"200": 7, "503": 2}

        failing = await session.call_tool(
            "list_api_calls", {"kfl": 'request.path=="/api/v1/checkout" and response.status==503'})
        assert not failing.is_error
        calls = failing.structured_content["calls"]
        assert [(c["path"], c["status"]) for c in calls] == [("/api/v1/checkout", 503)] * 2
        text = failing.content[0].text
        assert text.startswith("covers:") and "live dissection on" in text and text.count("/api/v1/checkout") == 2

        one = await session.call_tool("get_api_call", {"id": calls[0]["id"]})
        assert one.structured_content["id"] == calls[0]["id"]
        assert "untrusted-data" in one.content[0].text and "top-secret" not in one.content[0].text

        fields = await session.call_tool("list_fields", {"group": "http"})
        assert fields.structured_content["fields"] and all(f["group"] == "http" for f in fields.structured_content["fields"])

        off = await session.call_tool("disable_dissection", {})
        assert off.structured_content == {"enabled": False}
        status = await session.call_tool("get_dissection_status", {})
        assert status.structured_content == {"enabled": False}
        await session.call_tool("enable_dissection", {})

        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert prompts >= {"investigate_service", "find_errors", "latency_analysis", "security_audit"}
        prompt = await session.get_prompt("investigate_service", {"service": "frontend"})
        assert "frontend" in prompt.messages[0].content.text
    with_session(checkout_traffic, body)


def test_pages_with_cursor(checkout_traffic):
    async def body(session, _):
        seen, cursor = [], None
        for _ in range(10):
            args = {"limit": 4, "kfl": SCOPE} | ({"cursor": cursor} if cursor else {})
            page = (await session.call_tool("list_api_calls", args)).structured_content
            seen += [c["id"] for c in page["calls"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 9 == len(set(seen))
    with_session(checkout_traffic, body)


def test_bad_arguments_are_error_results_that_say_what_is_valid(checkout_traffic):
    async def body(session, _):
        cases = [
            ("list_api_calls", {"kfl": "response.stauts == 503"}, "did you mean `response.status`"),
            ("list_api_calls", {"limit": 0}, "from 1 to 1000"),
            ("list_api_calls", {"limit": "many"}, "from 1 to 1000"),
            ("list_api_calls", {"colour": "red"}, "valid: "),
            ("get_api_call", {"id": "no-such-call"}, "no call with id"),
            ("get_api_call", {}, "`id` is required"),
            ("no_such_tool", {}, "no tool named"),
        ]
        for tool, args, needle in cases:
            result = await session.call_tool(tool, args)
            assert result.is_error, (tool, args)
            assert needle in result.content[0].text, (tool, args, result.content[0].text)
        # The server is still there after all of that.
        assert not (await session.call_tool("get_dissection_status", {})).is_error
    with_session(checkout_traffic, body)


def test_every_result_stays_within_the_byte_budget(checkout_traffic):
    async def body(session, _):
        for args in ({"limit": 1000, "format": "full"}, {"limit": 1000}):
            result = await session.call_tool("list_api_calls", args)
            size = len(json.dumps(result.structured_content)) + sum(len(c.text) for c in result.content)
            assert size <= 2 * BUDGET
        fields = await session.call_tool("list_fields", {})
        assert len(fields.content[0].text) <= BUDGET
    with_session(checkout_traffic, body)
