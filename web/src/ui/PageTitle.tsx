// A page's one <h1>. It takes focus when the page opens (after a link was followed), so a
// keyboard or screen-reader user starts reading at the new page, and it names the tab.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

let first = true;

export function PageTitle({ children, title }: { children: ComponentChildren; title: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Catwalk Edge`;
    // The first page of a visit keeps the browser's own starting point.
    if (first) first = false;
    else ref.current?.focus();
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}
