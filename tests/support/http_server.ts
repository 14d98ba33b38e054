/**
 * A real HTTP server on 127.0.0.1 for downloader tests. It serves files from
 * memory, honours `Range: bytes=N-` with 206 / 416, and injects one fault per
 * request from a queue kept per path (a dropped connection, a stall, a status
 * code, wrong bytes, a server that ignores Range, a slow body). Every request
 * is logged with its Range header, the status answered and the body bytes
 * written, so tests can check what the client asked for and what it got.
 *
 * @module
 */

/** What the server does with one request. */
export type Fault =
  /** Serve the file, honouring a Range request (206, or 416 past the end). */
  | { kind: "ok" }
  /** Serve the whole file with 200 whatever the Range header says. */
  | { kind: "ignoreRange" }
  /** Answer with this status and a short text body. */
  | { kind: "status"; status: number }
  /** Declare the full length (of the file or the range), send `after` bytes, then close the connection. */
  | { kind: "cut"; after: number }
  /** Declare the full length, send `after` bytes, then send nothing until the client gives up. */
  | { kind: "stall"; after: number }
  /** Send no response headers until the server is closed. */
  | { kind: "stallHeaders" }
  /** Serve these bytes (200, their own length) instead of the file. */
  | { kind: "body"; bytes: Uint8Array }
  /** Serve the file (honouring Range) in `chunks` pieces `delayMs` apart. */
  | { kind: "slow"; chunks: number; delayMs: number };

/** One request as the server saw it. */
export interface RequestRecord {
  readonly path: string;
  readonly range: string | null;
  readonly fault: Fault["kind"];
  status: number;
  /** Body bytes handed to the connection (for a cut or stalled body, the part sent before the fault). */
  sent: number;
}

interface Route {
  bytes: Uint8Array;
  faults: Fault[];
  fallback: Fault;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fault-injecting server; create it, add routes, and `await close()` in a `finally`. */
export class FaultServer {
  readonly log: RequestRecord[] = [];
  readonly #routes = new Map<string, Route>();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  /** Resolvers of handlers that hold back their headers, released on close. */
  readonly #waiting = new Set<() => void>();

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => this.#handle(req));
  }

  /** The port the server listens on. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** The URL of `path` (which starts with `/`). */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /**
   * Serves `bytes` at `path`: the first requests get `faults` in order, every later one `fallback`
   * (default `ok`). Returns the URL.
   */
  route(path: string, bytes: Uint8Array, faults: Fault[] = [], fallback: Fault = { kind: "ok" }): string {
    this.#routes.set(path, { bytes, faults: [...faults], fallback });
    return this.url(path);
  }

  /** The requests made for `path` (every path when omitted). */
  requests(path?: string): RequestRecord[] {
    return path === undefined ? this.log : this.log.filter((r) => r.path === path);
  }

  /** Body bytes sent for `path` over all its requests. */
  bytesSent(path: string): number {
    return this.requests(path).reduce((s, r) => s + r.sent, 0);
  }

  /** Stops the server, releasing any handler still waiting for its client. */
  async close(): Promise<void> {
    for (const release of this.#waiting) release();
    this.#waiting.clear();
    await this.#server.shutdown();
  }

  async #handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const route = this.#routes.get(path);
    const fault: Fault = route ? route.faults.shift() ?? route.fallback : { kind: "status", status: 404 };
    const rec: RequestRecord = {
      path,
      range: req.headers.get("range"),
      fault: fault.kind,
      status: 0,
      sent: 0,
    };
    this.log.push(rec);
    const answer = (body: Uint8Array | ReadableStream<Uint8Array> | string, status: number, headers = {}) => {
      rec.status = status;
      if (body instanceof Uint8Array) rec.sent += body.length;
      const init = body instanceof Uint8Array ? new Uint8Array(body) : body;
      return new Response(init, { status, headers });
    };
    if (fault.kind === "status") return answer(`status ${fault.status}`, fault.status);
    if (fault.kind === "body") return answer(fault.bytes, 200);
    if (fault.kind === "stallHeaders") {
      // Held until close() (the client will have given up long before).
      await new Promise<void>((resolve) => this.#waiting.add(resolve));
      return answer("too late", 503);
    }
    const file = route!.bytes;
    // The part of the file to send, honouring `bytes=N-` unless the fault ignores Range.
    let start = 0, status = 200;
    const headers: Record<string, string> = { "accept-ranges": "bytes" };
    const m = fault.kind === "ignoreRange" ? null : /^bytes=(\d+)-$/.exec(rec.range ?? "");
    if (m) {
      start = Number(m[1]);
      if (start >= file.length) {
        return answer("", 416, { "content-range": `bytes */${file.length}` });
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${file.length - 1}/${file.length}`;
    }
    const part = file.subarray(start);
    headers["content-length"] = String(part.length);
    if (fault.kind === "ok" || fault.kind === "ignoreRange") return answer(part, status, headers);
    rec.status = status;
    if (fault.kind === "cut" || fault.kind === "stall") {
      const head = part.subarray(0, Math.min(fault.after, part.length));
      const stall = fault.kind === "stall";
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(head));
          rec.sent += head.length;
          // Closing a body shorter than its content-length makes the server drop the connection.
          if (!stall) c.close();
        },
      });
      return new Response(stream, { status, headers });
    }
    // slow
    const size = Math.ceil(part.length / fault.chunks);
    let at = 0;
    const delay = fault.delayMs;
    const stream = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (at >= part.length) return c.close();
        if (at > 0) await sleep(delay);
        const chunk = part.subarray(at, at + size);
        at += chunk.length;
        rec.sent += chunk.length;
        c.enqueue(new Uint8Array(chunk));
      },
    });
    return new Response(stream, { status, headers });
  }
}
