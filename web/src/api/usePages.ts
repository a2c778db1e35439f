// A list the API gives page by page (`items`, `next_cursor`): the first page on mount,
// more on request, the first again to refresh.
import { useEffect, useState } from "preact/hooks";

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function usePages<T>(fetchPage: (cursor: string | null) => Promise<Page<T>>) {
  const [items, setItems] = useState<T[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  /** `null`: the first page again (replacing the list); a cursor: the next (appended). */
  const load = async (after: string | null) => {
    setBusy(true);
    try {
      const page = await fetchPage(after);
      setItems((old) => (after ? [...(old ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor);
      setError(null);
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  useEffect(() => {
    void load(null);
  }, []);
  return { items, cursor, error, busy, load };
}
