// A button that copies a value to the clipboard and says so (politely, to screen readers
// too). Falls back to a hidden text area where the Clipboard API is refused.
import { useState } from "preact/hooks";

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

export function CopyButton({ value, label }: { value: string; label: string }) {
  const [said, setSaid] = useState("");
  const onClick = async () => {
    setSaid((await copy(value)) ? "Copied" : "Copy failed: select the text and copy it");
    setTimeout(() => setSaid(""), 4000);
  };
  return (
    <span class="copy">
      <button type="button" class="btn btn-secondary btn-small" onClick={onClick}>
        {label}
      </button>
      <span class="copy-said" role="status" aria-live="polite">
        {said}
      </span>
    </span>
  );
}
