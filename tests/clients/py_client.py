"""A real MCP client (the official Python SDK) for the integration tests.

usage: py_client.py URL TOKEN SCENARIO [ARG]
TOKEN is sent as `Authorization: Bearer TOKEN`; `header:T` sends it as `X-Access-Token: T`,
`query:T` appends `?token=T` to the URL (for clients that only take a URL).
Prints one JSON object with what the scenario observed; exits non-zero on failure.
Scenarios:
  basic     initialize (explicit handshake), tools/list, tools/call echo, get-env
  auto      the SDK's default auto mode: the server/discover probe, the handshake only if refused
  progress  trigger-long-running-operation, recording when each progress notification arrives
  sampling  a tool that asks the client to sample; our callback answers
  call      ARG = {"tool": NAME, "arguments": {...}}: tools/list, then that one call
  modern    ONLY 2026-07-28 (mode pinned, no fallback): server/discover, tools/list, one call
            (ARG = {"tool": NAME, "arguments": {...}}, default echo); sampling is answered through
            input_required. Records each POST's Mcp-Method and whether any request carried a session
  refused   initialize with this token: whether the SDK failed, the HTTP statuses it got
            and its error (exits 0 either way; the caller judges)
"""

import asyncio
import json
import sys
import time

import mcp_types as types
from mcp.client import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def transport(url, token, statuses=None, requests=None):
    headers = {}
    if token.startswith("header:"):
        headers = {"X-Access-Token": token[len("header:"):]}
    elif token.startswith("query:"):
        url += ("&" if "?" in url else "?") + "token=" + token[len("query:"):]
    elif token:
        headers = {"Authorization": f"Bearer {token}"}
    client = create_mcp_http_client(headers=headers)
    if statuses is not None:
        # The SDK reports any refusal as one JSON-RPC error; the status is kept here.
        async def record(response):
            statuses.append(response.status_code)

        client.event_hooks["response"] = [record]
    if requests is not None:

        async def seen(request):
            requests.append(
                {
                    "http": request.method,
                    "mcp_method": request.headers.get("mcp-method"),
                    "session": request.headers.get("mcp-session-id"),
                    "version": request.headers.get("mcp-protocol-version"),
                }
            )

        client.event_hooks["request"] = [seen]
    return streamable_http_client(url, http_client=client)


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def with_session(url, token, body, statuses=None, **kwargs):
    async with transport(url, token, statuses) as (read, write):
        async with ClientSession(read, write, **kwargs) as session:
            init = await session.initialize()
            return await body(session, init)


async def basic(url, token, _arg):
    async def body(session, init):
        tools = await session.list_tools()
        echo = await session.call_tool("echo", {"message": "hello from python"})
        env = await session.call_tool("get-env", {})
        return {
            "protocol": init.protocol_version,
            "server": init.server_info.name,
            "tools": sorted(t.name for t in tools.tools),
            "echo": text_of(echo),
            "env": json.loads(text_of(env)),
        }

    return await with_session(url, token, body)


async def auto(url, token, _arg):
    async with Client(transport(url, token)) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"message": "auto"})
        return {"tools": len(tools.tools), "echo": text_of(echo), "protocol": client.protocol_version}


async def progress(url, token, arg):
    duration = float(arg or 3)

    async def body(session, _init):
        start = time.monotonic()
        seen = []

        async def on_progress(p, total, message):
            seen.append({"t": round(time.monotonic() - start, 3), "progress": p, "total": total})

        result = await session.call_tool(
            "trigger-long-running-operation", {"duration": duration, "steps": 3}, progress_callback=on_progress
        )
        return {"progress": seen, "done_at": round(time.monotonic() - start, 3), "result": text_of(result)}

    return await with_session(url, token, body)


def answer_sampling(asked, text):
    """A sampling callback that records each question in `asked` and answers `text`."""

    async def on_sample(context, params):
        asked.append(params.messages[0].content.text if params.messages else "")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=text),
            model="test-model",
            stop_reason="endTurn",
        )

    return on_sample


async def sampling(url, token, _arg):
    asked = []
    on_sample = answer_sampling(asked, "sampled by the python test client")

    async def body(session, _init):
        result = await session.call_tool("trigger-sampling-request", {"prompt": "say something", "maxTokens": 20})
        return {"asked": asked, "result": text_of(result)}

    return await with_session(url, token, body, sampling_callback=on_sample)


async def call(url, token, arg):
    wanted = json.loads(arg)

    async def body(session, init):
        tools = await session.list_tools()
        result = await session.call_tool(wanted["tool"], wanted.get("arguments", {}))
        return {
            "server": init.server_info.name,
            "tools": sorted(t.name for t in tools.tools),
            "text": text_of(result),
            "is_error": bool(result.is_error),
        }

    return await with_session(url, token, body)


async def modern(url, token, arg):
    wanted = json.loads(arg) if arg else {"tool": "echo", "arguments": {"message": "modern"}}
    requests, asked = [], []
    on_sample = answer_sampling(asked, "sampled through input_required")

    async with Client(
        transport(url, token, requests=requests), mode="2026-07-28", sampling_callback=on_sample
    ) as client:
        discover = await client.session.send_discover("2026-07-28")
        tools = await client.list_tools()
        result = await client.call_tool(wanted["tool"], wanted.get("arguments", {}))
        return {
            "discover_versions": discover.get("supportedVersions"),
            "server": discover.get("_meta", {}).get("io.modelcontextprotocol/serverInfo", {}).get("name"),
            "tools": sorted(t.name for t in tools.tools),
            "text": text_of(result),
            "is_error": bool(result.is_error),
            "asked": asked,
            "requests": requests,
        }


def chain(e):
    """Every exception inside `e`: a task group's members and each cause, as text."""
    seen, out, todo = set(), [], [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        out.append(f"{type(x).__name__}: {x}")
        todo.extend(getattr(x, "exceptions", ()))
        todo.extend([x.__cause__, x.__context__])
    return " | ".join(out)


async def refused(url, token, _arg):
    async def body(_session, _init):
        return None

    statuses = []
    try:
        await with_session(url, token, body, statuses=statuses)
    except Exception as e:  # the SDK's task group wraps the HTTP error
        return {"refused": True, "statuses": statuses, "error": chain(e)[:600]}
    return {"refused": False, "statuses": statuses}


SCENARIOS = {"refused": refused, "basic": basic, "auto": auto, "modern": modern, "progress": progress, "sampling": sampling, "call": call}

if __name__ == "__main__":
    url, token, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else None
    out = asyncio.run(asyncio.wait_for(SCENARIOS[scenario](url, token, arg), timeout=60))
    print(json.dumps(out))
