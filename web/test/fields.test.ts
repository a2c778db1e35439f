// The deploy form's checks agree with the server's (registry::form::check_value,
// deploy::request): same verdicts, same words.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  argumentFields,
  check,
  checkName,
  checkValue,
  credentialFields,
  initialValues,
  slugOf,
  suggestName,
  toRequest,
} from "../src/form/fields";

const input = (over: Record<string, unknown>) => ({
  key: "k",
  description: null,
  required: false,
  secret: false,
  default: null,
  choices: [],
  format: "string" as const,
  placeholder: null,
  repeated: false,
  ...over,
});

test("values are checked for length, control characters, choices and format", () => {
  assert.equal(checkValue("x".repeat(1025), [], "string"), "must be at most 1024 bytes");
  assert.equal(checkValue("a\u0007b", [], "string"), "must not contain control characters");
  assert.equal(checkValue("rx", ["ro", "rw"], "string"), "must be one of: ro, rw");
  for (const ok of ["0", "-12", "3.25"]) assert.equal(checkValue(ok, [], "number"), null);
  for (const bad of ["", "1e3", "1.", ".5", "--1", " 1"]) assert.equal(checkValue(bad, [], "number"), "must be a number");
  assert.equal(checkValue("yes", [], "boolean"), "must be true or false");
  assert.equal(checkValue("", [], "filepath"), "must not be empty");
});

test("a required secret left blank is refused; optional blanks are left out of the request", () => {
  const fields = credentialFields([
    { name: "API_KEY", required: true, secret: true },
    { name: "REGION", required: false, secret: false, default: "eu" },
  ]);
  const values = initialValues(fields);
  assert.deepEqual(values, { "credentials.API_KEY": "", "credentials.REGION": "eu" });
  assert.deepEqual(check(fields, { ...values, "credentials.API_KEY": "   " }), {
    "credentials.API_KEY": "is required by this server",
  });
  const filled = { "credentials.API_KEY": "k-1", "credentials.REGION": "" };
  assert.deepEqual(check(fields, filled), {});
  assert.deepEqual(toRequest(fields, filled).credentials, { API_KEY: "k-1" });
});

test("free-text credentials may hold newlines; typed ones are checked like arguments", () => {
  const [pem, port] = credentialFields([
    { name: "PEM", description: null, required: true, secret: true, default: null, choices: [], format: "string", placeholder: null },
    { name: "PORT_NO", description: null, required: false, secret: false, default: null, choices: [], format: "number", placeholder: null },
  ]);
  assert.deepEqual(check([pem!, port!], { "credentials.PEM": "-----BEGIN\nabc\n-----END", "credentials.PORT_NO": "80a" }), {
    "credentials.PORT_NO": "must be a number",
  });
  assert.deepEqual(check([pem!], { "credentials.PEM": "a\0b" }), { "credentials.PEM": "must not contain NUL characters" });
});

test("arguments: defaults satisfy required, repeated ones are lists, one value otherwise", () => {
  const fields = argumentFields([
    input({ key: "root_dir", required: true, repeated: true, format: "filepath" }),
    input({ key: "mode", choices: ["ro", "rw"], default: "ro" }),
    input({ key: "port", required: true, default: "8080", format: "number" }),
  ]);
  assert.deepEqual(check(fields, {}), { "arguments.root_dir": "is required by this server" });
  const values = { "arguments.root_dir": "/a\n\n/b\n", "arguments.mode": "rw", "arguments.port": "" };
  assert.deepEqual(check(fields, values), {});
  assert.deepEqual(toRequest(fields, values).arguments, { root_dir: ["/a", "/b"], mode: "rw" });
  assert.deepEqual(check(fields, { ...values, "arguments.root_dir": Array(33).fill("/x").join("\n") }), {
    "arguments.root_dir": "takes at most 32 values",
  });
});

test("names and slugs follow the server's rules", () => {
  assert.equal(checkName("  "), "must be 1-80 printable characters");
  assert.equal(checkName("x".repeat(81)), "must be 1-80 printable characters");
  assert.equal(checkName("☃☃"), "must contain at least one letter or digit (a-z, 0-9)");
  assert.equal(checkName("My Weather"), null);
  assert.equal(slugOf("My  Weather!"), "my-weather");
  assert.equal(slugOf("42 things"), "mcp-42-things");
  assert.equal(slugOf("a".repeat(39) + " b"), "a".repeat(39));
  assert.equal(suggestName("npm:@modelcontextprotocol/server-everything"), "server-everything");
  assert.equal(suggestName("pypi:mcp-server-time@1.2"), "mcp-server-time");
  assert.equal(suggestName("https://github.com/acme/weather.git"), "weather");
});
