#!/usr/bin/env bash
# Prints what the dashboard's first load costs: the gzipped size of every script and
# stylesheet build/web/index.html loads (and of any module those scripts import), against
# the budget of 100 KB of JavaScript gzipped (docs/dashboard.md). Exits 1 over budget.
# Builds first (scripts/build-web.sh, skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh
node - build/web <<'JS'
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const root = process.argv[2];
const BUDGET = 100 * 1024;
const html = fs.readFileSync(path.join(root, "index.html"), "utf8");
const gz = (file) => zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;
const local = (url) => path.join(root, url.replace(/^\//, ""));
const scripts = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => local(m[1]));
const styles = [...html.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"/g)].map((m) => local(m[1]));
// Modules a loaded script imports statically load with it (code splitting).
const seen = new Set();
const queue = [...scripts];
while (queue.length) {
  const file = queue.shift();
  if (seen.has(file)) continue;
  seen.add(file);
  const src = fs.readFileSync(file, "utf8");
  for (const m of src.matchAll(/(?:^|[;}\s])(?:import|export)\s*(?:[^"'()]*?from\s*)?["'](\.{1,2}\/[^"']+)["']/g)) {
    queue.push(path.join(path.dirname(file), m[1]));
  }
}
let js = 0;
let css = 0;
const kb = (n) => (n / 1024).toFixed(1) + " KB";
for (const f of seen) {
  const n = gz(f);
  js += n;
  console.log(`  ${path.relative(root, f).padEnd(36)} ${kb(fs.statSync(f).size).padStart(9)} raw ${kb(n).padStart(9)} gzipped`);
}
for (const f of styles) {
  const n = gz(f);
  css += n;
  console.log(`  ${path.relative(root, f).padEnd(36)} ${kb(fs.statSync(f).size).padStart(9)} raw ${kb(n).padStart(9)} gzipped`);
}
console.log(`first load: JavaScript ${kb(js)} gzipped (budget ${kb(BUDGET)}), CSS ${kb(css)} gzipped`);
process.exit(js > BUDGET ? 1 : 0);
JS
