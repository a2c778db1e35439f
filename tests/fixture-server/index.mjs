//! The conformance fixture: one MCP server with every tool, resource, template and prompt
//! the server scenarios of `@modelcontextprotocol/conformance` call (`test_simple_text`,
//! `test_sampling`, `test://static-text`, `test_prompt_with_arguments`, …), built on the
//! TypeScript SDK's low-level `Server` so each answer is exactly what the scenario checks.
//!
//!   node tests/fixture-server/index.mjs stdio   # the default: what the runner launches
//!   node tests/fixture-server/index.mjs http    # its own Streamable HTTP on $PORT (/mcp)
//!
//! The HTTP mode is the reference the gateway is measured against
//! (`tests/tests/api/conformance.rs`): sessions, a GET stream, resumable SSE with a retry
//! hint (an in-memory event store) and DNS-rebinding protection (only localhost Hosts).
//! Over stdio the runner supplies all of that. Scenario descriptions:
//! https://github.com/modelcontextprotocol/conformance (src/scenarios/server).

import { randomUUID } from "node:crypto";

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from "@modelcontextprotocol/sdk/types.js";

/** A 1×1 red PNG. */
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/** A short silent WAV (8 kHz, 8-bit mono, 8 samples). */
const WAV = (() => {
  const samples = Buffer.alloc(8, 0x80);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + samples.length, 4);
  h.write("WAVEfmt ", 8);
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(8000, 24); // sample rate
  h.writeUInt32LE(8000, 28); // byte rate
  h.writeUInt16LE(1, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.write("data", 36);
  h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]).toString("base64");
})();

/** How long the SSE client is told to wait before reconnecting (SEP-1699). */
const RETRY_MS = 500;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: "text", text: t });
const noArgs = { type: "object", properties: {} };

const TOOLS = [
  { name: "test_simple_text", description: "Returns simple text.", inputSchema: noArgs },
  { name: "test_image_content", description: "Returns a PNG image.", inputSchema: noArgs },
  { name: "test_audio_content", description: "Returns WAV audio.", inputSchema: noArgs },
  { name: "test_embedded_resource", description: "Returns an embedded resource.", inputSchema: noArgs },
  {
    name: "test_multiple_content_types",
    description: "Returns text, an image and a resource.",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_logging",
    description: "Sends three info log messages while it runs.",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_progress",
    description: "Reports progress 0, 50, 100 of 100.",
    inputSchema: noArgs,
  },
  { name: "test_error_handling", description: "Always fails with isError.", inputSchema: noArgs },
  {
    name: "test_sampling",
    description: "Asks the client's LLM (sampling/createMessage).",
    inputSchema: {
      type: "object",
      properties: { prompt: { type: "string", description: "The prompt to send" } },
      required: ["prompt"],
    },
  },
  {
    name: "test_elicitation",
    description: "Asks the user for a username and email (elicitation/create).",
    inputSchema: {
      type: "object",
      properties: { message: { type: "string", description: "The message to show" } },
      required: ["message"],
    },
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Elicitation with a default for every primitive type (SEP-1034).",
    inputSchema: noArgs,
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Elicitation with all five enum shapes (SEP-1330).",
    inputSchema: noArgs,
  },
  {
    name: "test_reconnection",
    description: "Closes its SSE stream mid-call; the answer comes on resumption (SEP-1699).",
    inputSchema: noArgs,
  },
  {
    name: "json_schema_2020_12_tool",
    description: "An input schema using JSON Schema 2020-12 keywords (SEP-1613).",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
      additionalProperties: false,
    },
  },
];

const SEP1034_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", description: "User name", default: "John Doe" },
    age: { type: "integer", description: "User age", default: 30 },
    score: { type: "number", description: "User score", default: 95.5 },
    status: {
      type: "string",
      description: "User status",
      enum: ["active", "inactive", "pending"],
      default: "active",
    },
    verified: { type: "boolean", description: "Verification status", default: true },
  },
  required: [],
};

const SEP1330_SCHEMA = {
  type: "object",
  properties: {
    untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
    titledSingle: {
      type: "string",
      oneOf: [
        { const: "value1", title: "First Option" },
        { const: "value2", title: "Second Option" },
        { const: "value3", title: "Third Option" },
      ],
    },
    legacyEnum: {
      type: "string",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti: {
      type: "array",
      items: { type: "string", enum: ["option1", "option2", "option3"] },
    },
    titledMulti: {
      type: "array",
      items: {
        anyOf: [
          { const: "value1", title: "First Choice" },
          { const: "value2", title: "Second Choice" },
          { const: "value3", title: "Third Choice" },
        ],
      },
    },
  },
  required: [],
};

const RESOURCES = [
  {
    uri: "test://static-text",
    name: "static-text",
    description: "A static text resource.",
    mimeType: "text/plain",
  },
  {
    uri: "test://static-binary",
    name: "static-binary",
    description: "A static binary resource (a PNG).",
    mimeType: "image/png",
  },
  {
    uri: "test://watched-resource",
    name: "watched-resource",
    description: "A resource clients may subscribe to.",
    mimeType: "text/plain",
  },
];

const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

const PROMPTS = [
  { name: "test_simple_prompt", description: "A prompt without arguments." },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two arguments.",
    arguments: [
      { name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt embedding a resource.",
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
  },
  { name: "test_prompt_with_image", description: "A prompt with an image." },
];

/** One MCP server (one per session in HTTP mode; one per process over stdio). */
function createServer() {
  const server = new Server(
    { name: "catwalk-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: {},
        resources: { subscribe: true },
        prompts: {},
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const args = request.params.arguments ?? {};
    const log = (data) =>
      server.sendLoggingMessage({ level: "info", logger: "fixture", data }, extra.sessionId);
    switch (request.params.name) {
      case "test_simple_text":
        return { content: [text("This is a simple text response for testing.")] };
      case "test_image_content":
        return { content: [{ type: "image", data: PNG, mimeType: "image/png" }] };
      case "test_audio_content":
        return { content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] };
      case "test_embedded_resource":
        return {
          content: [
            {
              type: "resource",
              resource: {
                uri: "test://embedded-resource",
                mimeType: "text/plain",
                text: "This is an embedded resource content.",
              },
            },
          ],
        };
      case "test_multiple_content_types":
        return {
          content: [
            text("Multiple content types test:"),
            { type: "image", data: PNG, mimeType: "image/png" },
            {
              type: "resource",
              resource: {
                uri: "test://mixed-content-resource",
                mimeType: "application/json",
                text: JSON.stringify({ test: "data", value: 123 }),
              },
            },
          ],
        };
      case "test_tool_with_logging":
        await log("Tool execution started");
        await sleep(50);
        await log("Tool processing data");
        await sleep(50);
        await log("Tool execution completed");
        return { content: [text("Tool with logging executed successfully")] };
      case "test_tool_with_progress": {
        const token = request.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (token !== undefined) {
            await extra.sendNotification({
              method: "notifications/progress",
              params: { progressToken: token, progress, total: 100 },
            });
          }
          if (progress < 100) await sleep(50);
        }
        return { content: [text("Tool with progress executed successfully")] };
      }
      case "test_error_handling":
        return {
          isError: true,
          content: [text("This tool intentionally returns an error for testing")],
        };
      case "test_sampling": {
        const result = await extra.sendRequest(
          {
            method: "sampling/createMessage",
            params: {
              messages: [{ role: "user", content: text(String(args.prompt ?? "")) }],
              maxTokens: 100,
            },
          },
          CreateMessageResultSchema,
        );
        const answer = result.content?.type === "text" ? result.content.text : JSON.stringify(result.content);
        return { content: [text(`LLM response: ${answer}`)] };
      }
      case "test_elicitation": {
        const result = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              message: String(args.message ?? ""),
              requestedSchema: {
                type: "object",
                properties: {
                  username: { type: "string", description: "User's response" },
                  email: { type: "string", description: "User's email address" },
                },
                required: ["username", "email"],
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`User response: ${JSON.stringify(result)}`)] };
      }
      case "test_elicitation_sep1034_defaults":
      case "test_elicitation_sep1330_enums": {
        const sep1034 = request.params.name === "test_elicitation_sep1034_defaults";
        const result = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              message: sep1034 ? "Please review and update the form fields with defaults" : "Please pick from each kind of enum",
              requestedSchema: sep1034 ? SEP1034_SCHEMA : SEP1330_SCHEMA,
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`),
          ],
        };
      }
      case "test_reconnection":
        // Over HTTP the transport ends this request's SSE stream; the answer is stored in
        // the event store and replayed when the client comes back with Last-Event-ID.
        await sleep(100);
        extra.closeSSEStream?.();
        await sleep(200);
        return { content: [text("Reconnection test completed successfully")] };
      case "json_schema_2020_12_tool":
        return { content: [text(`Received: ${JSON.stringify(args)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      {
        uriTemplate: "test://template/{id}/data",
        name: "template-data",
        description: "Data for an id, substituted into the answer.",
        mimeType: "application/json",
      },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
    const { uri } = request.params;
    if (uri === "test://static-text") {
      return {
        contents: [{ uri, mimeType: "text/plain", text: "This is the content of the static text resource." }],
      };
    }
    if (uri === "test://static-binary") {
      return { contents: [{ uri, mimeType: "image/png", blob: PNG }] };
    }
    if (uri === "test://watched-resource") {
      return { contents: [{ uri, mimeType: "text/plain", text: "Watched resource content." }] };
    }
    const id = TEMPLATE.exec(uri)?.[1];
    if (id !== undefined) {
      return {
        contents: [
          {
            uri,
            mimeType: "application/json",
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    }
    throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
  });
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const args = request.params.arguments ?? {};
    switch (request.params.name) {
      case "test_simple_prompt":
        return { messages: [{ role: "user", content: text("This is a simple prompt for testing.") }] };
      case "test_prompt_with_arguments":
        return {
          messages: [
            {
              role: "user",
              content: text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`),
            },
          ],
        };
      case "test_prompt_with_embedded_resource":
        return {
          messages: [
            {
              role: "user",
              content: {
                type: "resource",
                resource: {
                  uri: args.resourceUri,
                  mimeType: "text/plain",
                  text: "Embedded resource content for testing.",
                },
              },
            },
            { role: "user", content: text("Please process the embedded resource above.") },
          ],
        };
      case "test_prompt_with_image":
        return {
          messages: [
            { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
            { role: "user", content: text("Please analyze the image above.") },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, async (request) => {
    const { value } = request.params.argument;
    const values = ["paris", "park", "party", "test", "testValue1"].filter((v) => v.startsWith(value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

async function stdio() {
  await createServer().connect(new StdioServerTransport());
}

/** Streamable HTTP on /mcp, one transport and server per session. */
function http() {
  const port = Number(process.env.PORT ?? 3000);
  // Host header validation for localhost (DNS-rebinding protection).
  const app = createMcpExpressApp({ host: "127.0.0.1" });
  const sessions = new Map();

  app.post("/mcp", async (req, res) => {
    const id = req.headers["mcp-session-id"];
    let transport = id === undefined ? undefined : sessions.get(id);
    if (transport === undefined) {
      if (id !== undefined || !isInitializeRequest(req.body)) {
        res.status(id === undefined ? 400 : 404).json({
          jsonrpc: "2.0",
          error: { code: -32000, message: id === undefined ? "Bad Request: no session" : "Session not found" },
          id: null,
        });
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        retryInterval: RETRY_MS,
        onsessioninitialized: (sid) => sessions.set(sid, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await createServer().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  });

  const existing = async (req, res) => {
    const transport = sessions.get(req.headers["mcp-session-id"]);
    if (transport === undefined) {
      res.status(req.headers["mcp-session-id"] === undefined ? 400 : 404).send("Unknown or missing session");
      return;
    }
    await transport.handleRequest(req, res);
  };
  app.get("/mcp", existing);
  app.delete("/mcp", existing);

  app.listen(port, "127.0.0.1", () => console.error(`conformance fixture on http://127.0.0.1:${port}/mcp`));
}

const mode = process.argv[2] ?? "stdio";
if (mode === "http") {
  http();
} else if (mode === "stdio") {
  await stdio();
} else {
  console.error(`usage: index.mjs [stdio|http]  (got ${mode})`);
  process.exit(2);
}
