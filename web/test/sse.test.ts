// SSE framing as MCP Streamable HTTP answers use it: events split across chunks, CRLF,
// keep-alive comments and the data-less priming event.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SseParser, type SseEvent } from "../src/mcp/sse";

function parse(chunks: string[]): SseEvent[] {
  const got: SseEvent[] = [];
  const p = new SseParser((e) => got.push(e));
  for (const c of chunks) p.push(c);
  return got;
}

test("an event split across chunks arrives once, whole", () => {
  const got = parse(["id: 7\nevent: mess", "age\ndata: {\"a\":", "1}\n", "\n"]);
  assert.deepEqual(got, [{ event: "message", data: '{"a":1}', id: "7" }]);
});

test("CRLF and CR line ends, multi-line data, comments", () => {
  const got = parse([": keep-alive\r\n\r\n", "data: one\r\ndata: two\r\n\r", "\ndata:x\r\r"]);
  assert.deepEqual(
    got.map((e) => e.data),
    ["one\ntwo", "x"],
  );
});

test("the priming event (an id, no data) is not handed on", () => {
  const got = parse(["id: 0\ndata:\n\n", "id: 1\ndata: {}\n\n"]);
  assert.deepEqual(got, [{ event: "message", data: "{}", id: "1" }]);
});
