/**
 * The geometry of the current window op (set once per op by setGeometry, on every thread) and the tap
 * arithmetic the window kernels share (kernels/wasm/as/window.ts, depthwise.ts).
 */

export let N: i32 = 0, C: i32 = 0, H: i32 = 0, W: i32 = 0, KH: i32 = 0, KW: i32 = 0, SH: i32 = 1, SW: i32 = 1;
export let PT: i32 = 0, PL: i32 = 0, OH: i32 = 0, OW: i32 = 0;

/** Input [n, c, h, w], window kh x kw, strides, top/left pads and output size oh x ow. */
export function setGeometry(
  n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, pt: i32, pl: i32, oh: i32, ow: i32,
): void {
  N = n;
  C = c;
  H = h;
  W = w;
  KH = kh;
  KW = kw;
  SH = sh;
  SW = sw;
  PT = pt;
  PL = pl;
  OH = oh;
  OW = ow;
}

/** First and last tap in [0, k) that reads padded position `pos` (stepping by `stride`); last < first if none. */
export let hitFirst: i32 = 0, hitLast: i32 = 0;
export function hitting(pos: i32, k: i32, stride: i32, out: i32): void {
  let first = max(0, pos - (out - 1) * stride);
  first += (((pos - first) % stride) + stride) % stride;
  hitFirst = first;
  hitLast = min(k - 1, pos);
}

// @ts-ignore: decorator
@inline export function floorDiv(a: i32, b: i32): i32 {
  return <i32>Math.floor(<f64>a / <f64>b);
}

// @ts-ignore: decorator
@inline export function ceilDiv(a: i32, b: i32): i32 {
  return <i32>Math.ceil(<f64>a / <f64>b);
}

