// A deployment's latency percentiles as a small bar chart (inline SVG: no library, no
// style attributes), with the same numbers in text for anyone not looking at it.
import type { Schemas } from "../api/client";

const W = 300;
const BAR = 22;
const GAP = 10;
const LABEL = 40;

export function UsageChart({ latency }: { latency: Schemas["Usage"]["latency_ms"] }) {
  const rows = (["p50", "p90", "p99"] as const).map((k) => ({ k, v: latency[k] }));
  const max = Math.max(1, ...rows.map((r) => r.v ?? 0));
  const h = rows.length * (BAR + GAP);
  const text = rows.map((r) => `${r.k} ${r.v === null ? "no data" : `${r.v} ms`}`).join(", ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${h}`} width="100%" role="img" aria-label={`Latency: ${text}`}>
        {rows.map((r, i) => {
          const y = i * (BAR + GAP);
          const w = r.v === null ? 0 : Math.max(2, ((W - LABEL - 70) * r.v) / max);
          return (
            <g key={r.k}>
              <text x="0" y={y + BAR * 0.7} class="chart-label">
                {r.k}
              </text>
              <rect x={LABEL} y={y} width={w} height={BAR} rx="3" class="chart-bar" />
              <text x={LABEL + w + 6} y={y + BAR * 0.7} class="chart-value">
                {r.v === null ? "–" : `${r.v} ms`}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>Latency percentiles: {text}.</figcaption>
    </figure>
  );
}
