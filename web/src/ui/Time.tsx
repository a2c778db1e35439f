// A timestamp in the reader's own locale, machine-readable underneath.
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <>–</>;
  const d = new Date(at);
  return <time dateTime={at}>{Number.isNaN(d.getTime()) ? at : d.toLocaleString()}</time>;
}
