// A real MCP client (the official TypeScript SDK) for the integration tests.
// usage: node ts_client.mjs URL TOKEN SCENARIO [ARG]   — prints one JSON object.
// TOKEN goes as a bearer; `header:T` as X-Access-Token, `query:T` as ?token=T on the URL.
// Scenarios: basic (initialize, tools/list, echo), progress (timed notifications),
// sampling (a tool that asks the client to sample).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, scenario, arg] = process.argv.slice(2);

async function connect(capabilities = {}) {
  const target = new URL(url);
  let headers = {};
  if (token.startsWith("header:")) headers = { "X-Access-Token": token.slice("header:".length) };
  else if (token.startsWith("query:")) target.searchParams.set("token", token.slice("query:".length));
  else if (token) headers = { Authorization: `Bearer ${token}` };
  const transport = new StreamableHTTPClientTransport(target, { requestInit: { headers } });
  const client = new Client({ name: "catwalk-ts-test", version: "1.0.0" }, { capabilities });
  await client.connect(transport);
  return { client, transport };
}

const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("");

const scenarios = {
  async basic() {
    const { client, transport } = await connect();
    const tools = await client.listTools();
    const echo = await client.callTool({ name: "echo", arguments: { message: "hello from typescript" } });
    const out = { session: transport.sessionId, tools: tools.tools.length, echo: text(echo) };
    await transport.terminateSession();
    await client.close();
    return out;
  },
  async progress() {
    const { client } = await connect();
    const start = performance.now();
    const seen = [];
    const result = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: Number(arg ?? 3), steps: 3 } },
      undefined,
      { onprogress: (p) => seen.push({ t: (performance.now() - start) / 1000, progress: p.progress }), timeout: 60000 },
    );
    await client.close();
    return { progress: seen, done_at: (performance.now() - start) / 1000, result: text(result) };
  },
  async sampling() {
    const { client } = await connect({ sampling: {} });
    const asked = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      asked.push(req.params.messages[0]?.content?.text ?? "");
      return { role: "assistant", content: { type: "text", text: "sampled by the typescript test client" }, model: "test-model", stopReason: "endTurn" };
    });
    const result = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "say something", maxTokens: 20 } });
    await client.close();
    return { asked, result: text(result) };
  },
};

const timer = setTimeout(() => { console.error("timed out"); process.exit(3); }, 60000);
try {
  console.log(JSON.stringify(await scenarios[scenario]()));
  clearTimeout(timer);
  process.exit(0);
} catch (e) {
  console.error(e?.stack ?? String(e));
  process.exit(1);
}
