// A modal question (the native <dialog>: focus stays inside, Escape cancels). Focus starts
// on the safe answer and returns to what opened it.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export function ConfirmDialog({
  title,
  children,
  confirm,
  danger = false,
  busy = false,
  onConfirm,
  onCancel,
}: {
  title: string;
  children: ComponentChildren;
  confirm: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const dialog = ref.current;
    dialog?.showModal();
    return () => {
      if (dialog?.open) dialog.close();
      opener?.focus?.();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="dialog"
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}
    >
      <h2 id="dialog-title">{title}</h2>
      <div class="stack">{children}</div>
      <div class="row dialog-actions">
        <button type="button" class="btn btn-secondary" autofocus onClick={onCancel} disabled={busy}>
          Cancel
        </button>
        <button type="button" class={danger ? "btn btn-danger" : "btn"} onClick={onConfirm} disabled={busy}>
          {busy ? `${confirm}…` : confirm}
        </button>
      </div>
    </dialog>
  );
}
