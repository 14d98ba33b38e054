/**
 * A minimal Chrome DevTools Protocol client over Deno's WebSocket, enough to
 * load a page in headless Chromium, watch its network requests and console,
 * evaluate expressions and take a screenshot. Used by the report's browser test.
 *
 * @module
 */

/** The Debian Chromium binary, when installed. */
export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

type Msg = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
  sessionId?: string;
};

/** A headless Chromium with one page attached. */
export class Browser {
  readonly events: Msg[] = [];
  #ws!: WebSocket;
  #next = 1;
  #pending = new Map<number, (m: Msg) => void>();
  #proc!: Deno.ChildProcess;
  #profile!: string;
  #session = "";

  /** Starts Chromium headless (no sandbox, no GPU, no background networking) and opens a blank page. */
  static async launch(): Promise<Browser> {
    if (!CHROMIUM) throw new Error("Chromium is not installed (apt-get install chromium)");
    const b = new Browser();
    b.#profile = await Deno.makeTempDir({ prefix: "f16repro-chromium-" });
    b.#proc = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        `--user-data-dir=${b.#profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--window-size=1280,900",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const url = await devtoolsUrl(b.#proc.stderr);
    b.#ws = new WebSocket(url);
    await new Promise((ok, fail) => {
      b.#ws.onopen = ok;
      b.#ws.onerror = fail;
    });
    b.#ws.onmessage = (e) => {
      const m: Msg = JSON.parse(e.data);
      if (m.id !== undefined) b.#reply(m);
      else b.events.push(m);
    };
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" }, false) as {
      targetId: string;
    };
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true }, false) as {
      sessionId: string;
    };
    b.#session = sessionId;
    for (const d of ["Network", "Runtime", "Log", "Page"]) await b.send(`${d}.enable`);
    return b;
  }

  #reply(m: Msg) {
    this.#pending.get(m.id!)?.(m);
    this.#pending.delete(m.id!);
  }

  /** Sends a command (to the page session unless `page` is false) and returns its result. */
  send(method: string, params: Record<string, unknown> = {}, page = true): Promise<unknown> {
    const id = this.#next++;
    const msg: Msg = { id, method, params, ...(page ? { sessionId: this.#session } : {}) };
    return new Promise((ok, fail) => {
      this.#pending.set(
        id,
        (m) => (m.error ? fail(new Error(`${method}: ${JSON.stringify(m.error)}`)) : ok(m.result)),
      );
      this.#ws.send(JSON.stringify(msg));
    });
  }

  /** Evaluates an expression in the page and returns its value. */
  async evaluate(expression: string): Promise<unknown> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }) as {
      result: { value?: unknown };
      exceptionDetails?: unknown;
    };
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }

  /** Closes the page, the browser and its profile folder. */
  async close(): Promise<void> {
    try {
      await this.send("Browser.close", {}, false).catch(() => {});
      this.#ws.close();
    } finally {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* already gone */ }
      await this.#proc.status;
      await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
    }
  }
}

async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (m) {
      // Keep draining stderr so Chromium never blocks on a full pipe.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* discard */ }
        } catch { /* closed */ }
      })();
      return m[1];
    }
  }
  throw new Error(`Chromium did not report a DevTools endpoint:\n${text.slice(-2000)}`);
}
