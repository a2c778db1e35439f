// The main task, one page: find a server, review it and fill its form, watch it start and
// connect. The access token of a new deployment lives in this page's state only: leaving
// the page drops it.
import { useState } from "preact/hooks";
import { PageTitle } from "../ui/PageTitle";
import { Find } from "./deploy/Find";
import type { Created, Found } from "./deploy/model";
import { Review } from "./deploy/Review";
import { Watch } from "./deploy/Watch";

type Step = { kind: "find" } | { kind: "review"; found: Found } | { kind: "watch"; created: Created };

const TITLES = { find: "Deploy an MCP server", review: "Review and deploy", watch: "Your new server" };

export function Deploy() {
  const [step, setStep] = useState<Step>({ kind: "find" });
  return (
    <div class="stack">
      <PageTitle title={TITLES[step.kind]}>{TITLES[step.kind]}</PageTitle>
      <ol class="steps" aria-label="Progress">
        {(["find", "review", "watch"] as const).map((k, i) => (
          <li key={k} aria-current={step.kind === k ? "step" : undefined}>
            {i + 1}. {k === "find" ? "Find" : k === "review" ? "Review" : "Run"}
          </li>
        ))}
      </ol>
      {step.kind === "find" && <Find onFound={(found) => setStep({ kind: "review", found })} />}
      {step.kind === "review" && (
        <Review
          found={step.found}
          onBack={() => setStep({ kind: "find" })}
          onCreated={(created) => setStep({ kind: "watch", created })}
        />
      )}
      {step.kind === "watch" && <Watch created={step.created} />}
    </div>
  );
}
