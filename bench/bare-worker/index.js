// The platform's lower bound for the gateway's design, for `make bench-gateway`: a Worker
// in plain JavaScript that does only what any gateway of this shape must do, and nothing of
// ours (no Rust, no configuration, no logging, no session mapping, no usage counts).
//   GET  /health  the floor: a JSON answer, no storage, no upstream.
//   *    /mcp     the request passed to the machine (through the same machines ingress as
//                 the real gateway) with our secret and the machine pin, the answer relayed.
//   *    /mcp-do  the same after one Durable Object hop that judges a token from memory.
//   *    /mcp-via-do  the other shape: the request handed to the object, which judges it and
//                 makes the machine hop itself; the answer streams back through it.
// The benchmark prints these next to the real gateway in the same run; what no Worker can
// beat on this machine is then a number, not an argument.
import { DurableObject } from 'cloudflare:workers';

export class Gate extends DurableObject {
  async fetch(request) {
    if (new URL(request.url).pathname === '/proxy') {
      const token = (request.headers.get('authorization') || '').replace(/^Bearer /, '');
      if (token !== this.env.TOKEN) return new Response('{"error":"unauthorized"}', { status: 401 });
      const body = request.method === 'POST' ? await request.arrayBuffer() : undefined;
      return hop(request, body, this.env.SECRET, this.env.MACHINE, this.env.RUNNER);
    }
    const { token } = await request.json();
    const pass = token === this.env.TOKEN;
    return Response.json(pass ? { pass, secret: this.env.SECRET, machine: this.env.MACHINE } : { pass });
  }
}

const DROPPED = new Set(['authorization', 'host', 'content-length', 'cookie', 'origin', 'connection']);

async function hop(request, body, secret, machine, url) {
  const headers = new Headers();
  for (const [k, v] of request.headers) {
    if (!DROPPED.has(k) && !k.startsWith('cf-') && !k.startsWith('fly-')) headers.set(k, v);
  }
  headers.set('authorization', `Bearer ${secret}`);
  headers.set('fly-force-instance-id', machine);
  const answer = await fetch(url, { method: request.method, headers, body, signal: AbortSignal.timeout(60_000) });
  const out = new Headers();
  for (const k of ['content-type', 'cache-control', 'mcp-session-id', 'mcp-protocol-version', 'retry-after']) {
    const v = answer.headers.get(k);
    if (v) out.set(k, v);
  }
  return new Response(answer.body, { status: answer.status, headers: out });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/health') return Response.json({ status: 'ok' });
    if (pathname === '/mcp-via-do') {
      const gate = env.GATE.get(env.GATE.idFromName('bench'));
      return gate.fetch(new Request('https://gate/proxy', request));
    }
    const body = request.method === 'POST' ? await request.arrayBuffer() : undefined;
    if (pathname === '/mcp') return hop(request, body, env.SECRET, env.MACHINE, env.RUNNER);
    if (pathname === '/mcp-do') {
      const token = (request.headers.get('authorization') || '').replace(/^Bearer /, '');
      const gate = env.GATE.get(env.GATE.idFromName('bench'));
      const verdict = await (await gate.fetch('https://gate/pass', { method: 'POST', body: JSON.stringify({ token }) })).json();
      if (!verdict.pass) return new Response('{"error":"unauthorized"}', { status: 401 });
      return hop(request, body, verdict.secret, verdict.machine, env.RUNNER);
    }
    return new Response('{"error":"not_found"}', { status: 404 });
  },
};
