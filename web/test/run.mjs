// Runs the dashboard's unit tests (web/test/*.test.ts: the pure modules) with node:test,
// each compiled by esbuild into build/web-test first. Run by scripts/build-web.sh.
import * as esbuild from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "build", "web-test");
const tests = readdirSync(here).filter((f) => f.endsWith(".test.ts"));
await esbuild.build({
  entryPoints: tests.map((f) => join(here, f)),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir: out,
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
const run = spawnSync(process.execPath, ["--test", ...tests.map((f) => join(out, f.replace(/\.ts$/, ".mjs")))], {
  stdio: ["ignore", "pipe", "inherit"],
  encoding: "utf8",
});
if (run.status !== 0) {
  process.stderr.write(run.stdout);
  process.exit(run.status ?? 1);
}
const summary = run.stdout.split("\n").filter((l) => /^# (tests|pass|fail)/.test(l)).join(", ");
process.stderr.write(`web unit tests: ${summary.replace(/# /g, "")}\n`);
