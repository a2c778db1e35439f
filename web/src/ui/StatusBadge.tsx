// A deployment's status as a word with a colour (never colour alone).
import type { Schemas } from "../api/client";

export type Status = Schemas["Deployment"]["status"];

const WORDS: Record<Status, string> = {
  pending: "Pending",
  deploying: "Deploying",
  running: "Running",
  stopped: "Stopped",
  failed: "Failed",
  deleting: "Deleting",
};

export function StatusBadge({ status }: { status: Status }) {
  return <span class={`badge badge-${status}`}>{WORDS[status] ?? status}</span>;
}

/** Statuses that change by themselves: a page showing one keeps polling. */
export function isSettling(status: Status): boolean {
  return status === "pending" || status === "deploying" || status === "deleting";
}
