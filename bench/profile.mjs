// Samples the Worker's CPU through wrangler dev's V8 inspector while a load runs, and
// prints where it went: self time per function (wasm names from the module's name
// section, JS names otherwise). Usage: node --experimental-websocket bench/profile.mjs
// <inspector-port> <seconds | 0 = until stdin closes>. Used by `gateway-bench` when PROFILE=1. (The `ws` package:
// wrangler's inspector proxy refuses the handshake of Node's built-in WebSocket.)
import WebSocket from 'ws';

const [port, seconds] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
if (process.env.PROFILE_DEBUG) console.error(JSON.stringify(targets, null, 1));
const out = [];
for (const t of targets) {
  const ws = new WebSocket(t.webSocketDebuggerUrl, { headers: { origin: `http://127.0.0.1:${port}` } });
  await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = (e) => bad(new Error(`inspector ${t.webSocketDebuggerUrl}: ${e.message}`)); });
  let next = 1;
  const pending = new Map();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
  };
  const send = (method, params = {}) => new Promise((ok) => {
    const id = next++;
    pending.set(id, ok);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 50 });
  await send('Profiler.start');
  out.push({ t, ws, send });
}
// Profile for `seconds`, or (0) until stdin closes: the caller then knows exactly which
// requests the profile covers.
if (Number(seconds) > 0) {
  await new Promise((ok) => setTimeout(ok, Number(seconds) * 1000));
} else {
  console.log(JSON.stringify({ profile: 'started' }));
  process.stdin.resume();
  await new Promise((ok) => process.stdin.on('end', ok));
}
for (const { t, ws, send } of out) {
  const { result } = await send('Profiler.stop');
  ws.close();
  const p = result.profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  const dt = p.timeDeltas;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const f = n.callFrame;
    const name = f.functionName || `(${f.url.split('/').pop() || 'anonymous'}:${f.lineNumber + 1})`;
    const d = dt[i] || 0;
    total += d;
    self.set(name, (self.get(name) || 0) + d);
  });
  // Where the isolate's busy time went: our Rust (wasm), the JS glue around it, and the
  // runtime's own work (its APIs, V8 internals, GC). Idle time is not CPU.
  const kinds = { wasm: 0, glue: 0, runtime: 0 };
  p.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    if (f.functionName === '(idle)') return;
    const d = dt[i] || 0;
    if (f.url.startsWith('wasm://')) kinds.wasm += d;
    else if (f.url.endsWith('.js') || f.url.endsWith('.mjs')) kinds.glue += d;
    else kinds.runtime += d;
  });
  const busy = kinds.wasm + kinds.glue + kinds.runtime;
  console.log(JSON.stringify({ profile: 'busy_ms', busy: busy / 1000, wasm: kinds.wasm / 1000, glue: kinds.glue / 1000, runtime: kinds.runtime / 1000 }));
  console.log(`target ${t.title} (${t.url}): ${(total / 1000).toFixed(0)} ms sampled`);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [name, us] of rows) {
    console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${name.slice(0, 140)}`);
  }
}
