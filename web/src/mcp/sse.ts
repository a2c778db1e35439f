// Server-Sent Events framing (the WHATWG "event stream" format) for MCP Streamable HTTP
// answers: fed text as it arrives, it hands on each complete event. Comments (keep-alives)
// and events without data (the 2025-11-25 priming event) are not handed on.

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  /** The last chunk ended in CR: a LF starting the next one ends no further line. */
  private afterCr = false;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: string): void {
    // A line ends at CRLF, LF or CR (a CRLF may be split between two chunks).
    this.buffer += this.afterCr && chunk.startsWith("\n") ? chunk.slice(1) : chunk;
    this.afterCr = chunk.endsWith("\r");
    const lines = this.buffer.split(/\r\n|\n|\r/);
    this.buffer = lines.pop() ?? "";
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === "") {
      const data = this.data.join("\n");
      if (data !== "") this.onEvent({ event: this.event || "message", data, id: this.id });
      this.data = [];
      this.event = "";
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}
