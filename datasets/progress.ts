/**
 * Download progress on stderr: a redrawn bar when stderr is a terminal, plain
 * lines (every 10%, or every 5 s when the size is unknown) when it is not.
 *
 * @module
 */

import type { Progress } from "./download.ts";

/** Callbacks for {@linkcode ensureFile} that print progress and events (nothing when `quiet`). */
export function progressPrinter(
  quiet: boolean,
): { onProgress: (p: Progress) => void; onEvent: (m: string) => void } {
  const tty = (() => {
    try {
      return Deno.stderr.isTerminal();
    } catch {
      return false;
    }
  })();
  const enc = new TextEncoder();
  const write = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  let lastName = "", lastStep = -1, lastTime = 0, open = false;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return {
    onProgress(p) {
      if (quiet) return;
      if (p.name !== lastName) (lastName = p.name), (lastStep = -1), (lastTime = 0);
      const frac = p.total ? p.received / p.total : null;
      if (tty) {
        const width = 30, filled = frac === null ? 0 : Math.round(frac * width);
        const bar = frac === null ? "" : `[${"#".repeat(filled)}${" ".repeat(width - filled)}] `;
        write(`\r${p.name} ${bar}${mb(p.received)}${p.total ? `/${mb(p.total)}` : ""} MB\x1b[K`);
        open = true;
        if (frac === 1) write("\n"), (open = false);
        return;
      }
      const step = frac === null ? -1 : Math.floor(frac * 10);
      const now = Date.now();
      if ((frac !== null && step > lastStep) || (frac === null && now - lastTime > 5000)) {
        lastStep = step;
        lastTime = now;
        write(`${p.name}: ${mb(p.received)}${p.total ? ` of ${mb(p.total)}` : ""} MB\n`);
      }
    },
    onEvent(m) {
      if (quiet) return;
      if (open) write("\n"), (open = false);
      write(`${m}\n`);
    },
  };
}
