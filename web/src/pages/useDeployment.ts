// One deployment, read and kept fresh: re-read every 2 s while its status changes by
// itself (pending, deploying, deleting), then left alone. Stops when the page closes.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { call, type Schemas } from "../api/client";
import { isSettling } from "../ui/StatusBadge";

export type Deployment = Schemas["Deployment"];

const EVERY_MS = 2000;

export function useDeployment(id: string, initial: Deployment | null = null) {
  const [deployment, setDeployment] = useState<Deployment | null>(initial);
  const [error, setError] = useState<unknown>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const alive = useRef(true);

  const refresh = useCallback(async () => {
    clearTimeout(timer.current);
    try {
      const d = await call("get", "/api/deployments/{id}", { params: { id } });
      if (!alive.current) return;
      setDeployment(d);
      setError(null);
      if (isSettling(d.status)) timer.current = setTimeout(refresh, EVERY_MS);
    } catch (e) {
      if (!alive.current) return;
      setError(e);
      // A passing fault (503) is tried again; a 404 (deleted) is final.
      if ((e as { status?: number }).status !== 404) timer.current = setTimeout(refresh, EVERY_MS * 2);
    }
  }, [id]);

  useEffect(() => {
    alive.current = true;
    void refresh();
    return () => {
      alive.current = false;
      clearTimeout(timer.current);
    };
  }, [refresh]);

  /** Takes an answer that already holds the new state (stop/start/restart), then polls. */
  const adopt = useCallback(
    (d: Deployment) => {
      setDeployment(d);
      if (isSettling(d.status)) {
        clearTimeout(timer.current);
        timer.current = setTimeout(refresh, EVERY_MS);
      }
    },
    [refresh],
  );

  return { deployment, error, refresh, adopt };
}
