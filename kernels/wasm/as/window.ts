/**
 * Window ops on NCHW tensors (ref: kernels/ref/window.ts): gathers that turn the three convolutions into
 * gemm panels, the direct convolutions (any accumulate format, and any operand values), and pooling.
 * The geometry of the current op is set once by setGeometry.
 */

import { FP32, ld, ldf, round, st } from "./format";
import { storeTransposed4 } from "./simd";
import { C, ceilDiv, floorDiv, H, hitFirst, hitLast, hitting, KH, KW, N, OH, OW, PL, PT, SH, SW, W } from "./geometry";

// A panel entry pairs a tap (c, i, j) with a pixel (image, p, q). Each side contributes a base offset and a
// row and column shift; `seek` puts the walk at an entity, `sides` writes 8 consecutive entities (the
// panel's 8 columns) into `tmp` (i32[32]: base, dy, dx, valid) and `step` walks the rows in order without
// divisions.

let eBase: i32 = 0, eDy: i32 = 0, eDx: i32 = 0, eA: i32 = 0, eB: i32 = 0, eC: i32 = 0;

/** Puts the walk at entity `e`: tap (c, i, j) or pixel (image, p, q) number e. */
function seek(taps: bool, n0: i32, e: i32, plane: i32, imageStride: i32): void {
  if (taps) {
    const kk = KH * KW, t = e % kk;
    eA = e / kk;
    eB = t / KW;
    eC = t % KW;
    eBase = eA * plane;
    eDy = eB;
    eDx = eC;
  } else {
    const pix = OH * OW, r = e % pix;
    eA = e / pix;
    eB = r / OW;
    eC = r % OW;
    eBase = (n0 + eA) * imageStride;
    eDy = eB * SH - PT;
    eDx = eC * SW - PL;
  }
}

/** Moves to the next tap (c, i, j ascending) or pixel (image, p, q ascending). */
// @ts-ignore: decorator
@inline function step(taps: bool, plane: i32, imageStride: i32): void {
  if (taps) {
    if (++eC < KW) {
      eDx++;
    } else {
      eC = 0;
      eDx = 0;
      if (++eB < KH) eDy++;
      else {
        eB = 0;
        eDy = 0;
        eA++;
        eBase += plane;
      }
    }
  } else {
    if (++eC < OW) {
      eDx += SW;
    } else {
      eC = 0;
      eDx = -PL;
      if (++eB < OH) eDy += SH;
      else {
        eB = 0;
        eDy = -PT;
        eA++;
        eBase += imageStride;
      }
    }
  }
}

/** Writes (base, dy, dx, valid) of 8 entities from the walk's position to tmp; those past `count` are invalid. */
function sides(taps: bool, count: i32, plane: i32, imageStride: i32, tmp: usize): void {
  for (let cc = 0; cc < 8; cc++) {
    const p = tmp + (<usize>cc << 2);
    store<i32>(p, eBase);
    store<i32>(p, eDy, 32);
    store<i32>(p, eDx, 64);
    store<i32>(p, cc < count ? 1 : 0, 96);
    if (cc < count) step(taps, plane, imageStride);
  }
}

/** True when the 8 columns in `tmp` (base, row, column) share column 0's base and row, at its next columns. */
function oneRow(tmp: usize): bool {
  const b0 = load<i32>(tmp), r0 = load<i32>(tmp, 32), c0 = load<i32>(tmp, 64);
  for (let cc = 1; cc < 8; cc++) {
    const p = tmp + (<usize>cc << 2);
    if (load<i32>(p) != b0 || load<i32>(p, 32) != r0 || load<i32>(p, 64) != c0 + cc) return false;
  }
  return true;
}

/** Lanes of columns xx..xx+3 that lie in [0, width): all ones, the others zero. */
// @ts-ignore: decorator
@inline function inside4(xx: i32, width: i32): v128 {
  const lanes = i32x4.add(i32x4.splat(xx), i32x4(0, 1, 2, 3));
  return v128.and(i32x4.ge_s(lanes, i32x4.splat(0)), i32x4.lt_s(lanes, i32x4.splat(width)));
}

/** Writes 8 zeros to the panel row at `d`. */
// @ts-ignore: decorator
@inline function zero8(d: usize): void {
  v128.store(d, i32x4.splat(0));
  v128.store(d, i32x4.splat(0), 16);
}

/**
 * Copies columns xx..xx+7 of the f32 row at `row` (`width` long) to the panel row at `d`, 0 for columns
 * outside it. The loads may start up to 7 values before the row and end up to 7 past it (masked lanes); the
 * arena's slack past its last buffer and the tables below its first keep them inside the memory
 * (kernels/wasm/memory.ts's SLACK).
 */
// @ts-ignore: decorator
@inline function copy8Masked(d: usize, row: usize, xx: i32, width: i32): void {
  if (xx <= -8 || xx >= width) return zero8(d);
  const from = row + (<usize>xx << 2);
  v128.store(d, v128.and(v128.load(from), inside4(xx, width)));
  v128.store(d, v128.and(v128.load(from, 16), inside4(xx + 4, width)), 16);
}

/**
 * Stride 2: lane l of the panel row at `d` gets column (rw + l) / 2 of the f32 row at `row` (`width` long)
 * where rw + l is even and that column lies in the row, 0 in the other lanes. Loads as copy8Masked.
 */
// @ts-ignore: decorator
@inline function spread8(d: usize, row: usize, rw: i32, width: i32): void {
  const odd = rw & 1, c0 = (rw + odd) >> 1; // the column of the first lane that reads one (lane `odd`)
  if (c0 <= -4 || c0 >= width) return zero8(d);
  const v = v128.and(v128.load(row + (<usize>c0 << 2)), inside4(c0, width)), z = i32x4.splat(0);
  if (odd) {
    v128.store(d, i32x4.shuffle(z, v, 0, 4, 1, 5));
    v128.store(d, i32x4.shuffle(z, v, 2, 6, 3, 7), 16);
  } else {
    v128.store(d, i32x4.shuffle(v, z, 0, 4, 1, 5));
    v128.store(d, i32x4.shuffle(v, z, 2, 6, 3, 7), 16);
  }
}

/**
 * Inputs of pixels h..h+3 of the walk's output row (a stride-1 run) under tap column `cc` of `tmp`, as f32x4:
 * 0 where the tap falls outside the input (or the column is past the panel's end). Loads as copy8Masked.
 */
// @ts-ignore: decorator
@inline function tapRun(src: usize, tmp: usize, cc: i32, h: i32): v128 {
  const p = tmp + (<usize>cc << 2), y = eDy + load<i32>(p, 32), xx = eDx + load<i32>(p, 64) + h;
  if (!load<i32>(p, 96) || <u32>y >= <u32>H || xx <= -4 || xx >= W) return f32x4.splat(0);
  return v128.and(v128.load(src + (<usize>(eBase + load<i32>(p) + y * W + xx) << 2)), inside4(xx, W));
}

/**
 * Gathers the conv2d input x as a gemm B panel (layout in gemm.ts). Rows are taps (c, i, j) over `cg`
 * channels from `c0` and columns pixels (image, p, q) over images [n0, n0 + nc); `transposed` swaps them
 * (the B panel of the weight gradient). Taps outside the input are 0. Writes column blocks [jb0, jb1)
 * (a thread's share). `tmp` is this thread's i32[32] scratch.
 */
export function im2col(
  x: usize, fx: i32, n0: i32, nc: i32, c0: i32, cg: i32, transposed: bool, dst: usize, tmp: usize, jb0: i32, jb1: i32,
): void {
  const plane = H * W, imageStride = C * plane, taps = cg * KH * KW, pix = nc * OH * OW;
  const k = transposed ? pix : taps, n = transposed ? taps : pix, nb = min((n + 7) >> 3, jb1);
  const colTaps = transposed, rowTaps = !transposed;
  const src = x + (<usize>(c0 * plane) << (fx == FP32 ? 2 : 1));
  for (let jb = jb0; jb < nb; jb++) {
    // The block's 8 columns, then the rows walked from the start (the walk state is shared by both).
    const cols = min(8, n - jb * 8);
    seek(colTaps, n0, jb * 8, plane, imageStride);
    sides(colTaps, cols, plane, imageStride, tmp);
    seek(rowTaps, n0, 0, plane, imageStride);
    let d = dst + ((<usize>(jb * k) << 3) << 2);
    // Columns that are 8 pixels of one output row, stride 1, read 8 adjacent f32 inputs for every tap: two
    // masked vector copies instead of 8 checked loads (the same values).
    const b0 = load<i32>(tmp), y0 = load<i32>(tmp, 32), x0 = load<i32>(tmp, 64);
    const run = rowTaps && fx == FP32 && SW == 1 && cols == 8 && oneRow(tmp);
    for (let q = 0; q < k; q++) {
      // The weight gradient's rows: 8 pixels of one output row at stride 1 read, for each of the 8 taps, 8
      // adjacent inputs; loaded as vectors (zero outside the input) and transposed in registers.
      if (colTaps && fx == FP32 && SW == 1 && eC + 8 <= OW) {
        for (let t = 0; t < 8; t += 4) {
          for (let h = 0; h < 8; h += 4) {
            const v0 = tapRun(src, tmp, t, h), v1 = tapRun(src, tmp, t + 1, h);
            const v2 = tapRun(src, tmp, t + 2, h), v3 = tapRun(src, tmp, t + 3, h);
            storeTransposed4(d + (<usize>(h * 8 + t) << 2), 32, v0, v1, v2, v3);
          }
        }
        d += 256;
        q += 7;
        for (let r = 0; r < 8; r++) step(rowTaps, plane, imageStride);
        continue;
      }
      const y = eDy + y0, xx = eDx + x0;
      if (run) {
        if (<u32>y < <u32>H) copy8Masked(d, src + (<usize>(eBase + b0 + y * W) << 2), xx, W);
        else zero8(d);
        d += 32;
        step(rowTaps, plane, imageStride);
        continue;
      }
      for (let cc = 0; cc < 8; cc++) {
        const p = tmp + (<usize>cc << 2);
        const y = eDy + load<i32>(p, 32), xx = eDx + load<i32>(p, 64);
        let v: f32 = 0;
        if (<u32>y < <u32>H && <u32>xx < <u32>W && load<i32>(p, 96)) {
          v = ldf(fx, src, eBase + load<i32>(p) + y * W + xx);
        }
        store<f32>(d + (<usize>cc << 2), v);
      }
      d += 32;
      step(rowTaps, plane, imageStride);
    }
  }
}

/**
 * Gathers the output gradient g [n, o, oh, ow] as the B panel of the input gradient: rows are taps
 * (o, i, j) over `og` channels from `o0`, columns input pixels (image, h, w) over images [n0, n0 + nc).
 * An entry is the gradient of the output that tap (i, j) of the window at (h, w) feeds, or 0 when no
 * output does. Writes column blocks [jb0, jb1); `tmp` is this thread's i32[32] scratch.
 */
export function col2imPanel(
  g: usize, fg: i32, o: i32, n0: i32, nc: i32, o0: i32, og: i32, dst: usize, tmp: usize, jb0: i32, jb1: i32,
): void {
  const plane = OH * OW, k = og * KH * KW, n = nc * H * W, nb = min((n + 7) >> 3, jb1);
  const src = g + (<usize>((n0 * o + o0) * plane) << (fg == FP32 ? 2 : 1));
  const unit = SH == 1 && SW == 1;
  for (let jb = jb0; jb < nb; jb++) {
    for (let cc = 0; cc < 8; cc++) {
      const j = jb * 8 + cc, p = tmp + (<usize>cc << 2);
      const img = j / (H * W), hw = j % (H * W);
      store<i32>(p, img * o * plane);
      store<i32>(p, hw / W + PT, 32);
      store<i32>(p, hw % W + PL, 64);
      store<i32>(p, j < n ? 1 : 0, 96);
    }
    let d = dst + ((<usize>(jb * k) << 3) << 2);
    // Columns that are 8 pixels of one input row read, at strides 1 and 2, the f32 gradients of one output row
    // for every tap: masked vector copies, spread to every other lane at stride 2 (the same values).
    const b0 = load<i32>(tmp), h0 = load<i32>(tmp, 32), w0 = load<i32>(tmp, 64);
    const run = SH <= 2 && SW <= 2 && fg == FP32 && jb * 8 + 8 <= n && oneRow(tmp);
    let oc = 0, i = 0, jj = 0, base = 0;
    for (let q = 0; q < k; q++) {
      const rh = h0 - i, rw = w0 - jj;
      if (run) {
        // The output row that tap row i of these pixels reads, if any: rh / SH when SH divides it.
        const ph = rh >> (SH - 1), hit = rh >= 0 && (rh & (SH - 1)) == 0 && ph < OH;
        const row = src + (<usize>(b0 + base + ph * OW) << 2);
        if (!hit) zero8(d);
        else if (SW == 1) copy8Masked(d, row, rw, OW);
        else spread8(d, row, rw, OW);
      } else {
        for (let cc = 0; cc < 8; cc++) {
          const p = tmp + (<usize>cc << 2);
          let ph = load<i32>(p, 32) - i, pw = load<i32>(p, 64) - jj;
          let v: f32 = 0;
          if (ph >= 0 && pw >= 0 && load<i32>(p, 96)) {
            let ok = true;
            if (!unit) {
              ok = ph % SH == 0 && pw % SW == 0;
              ph /= SH;
              pw /= SW;
            }
            if (ok && ph < OH && pw < OW) v = ldf(fg, src, load<i32>(p) + base + ph * OW + pw);
          }
          store<f32>(d + (<usize>cc << 2), v);
        }
      }
      d += 32;
      if (++jj == KW) {
        jj = 0;
        if (++i == KH) {
          i = 0;
          oc++;
          base += plane;
        }
      }
    }
  }
}

/** Direct conv2d in the ref engine's order (c, i, j) over in-bounds taps, for any accumulate format. */
export function conv2dDirect(x: usize, fx: i32, w: usize, fw: i32, y: usize, fy: i32, o: i32, cg: i32, groups: i32, acc: i32): void {
  const og = o / groups, kk = KH * KW;
  let t = 0;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < o; oc++) {
      const c0 = (oc / og) * cg;
      for (let p = 0; p < OH; p++) {
        const ih0 = p * SH - PT, iLo = max(0, -ih0), iHi = min(KH, H - ih0);
        for (let q = 0; q < OW; q++) {
          const iw0 = q * SW - PL, jLo = max(0, -iw0), jHi = min(KW, W - iw0);
          let s: f64 = 0;
          for (let c = 0; c < cg; c++) {
            const xb = ((n * C + c0 + c) * H + ih0) * W + iw0, wb = (oc * cg + c) * kk;
            for (let i = iLo; i < iHi; i++) {
              const xr = xb + i * W, wr = wb + i * KW;
              for (let j = jLo; j < jHi; j++) s = round(acc, s + round(acc, ld(fx, x, xr + j) * ld(fw, w, wr + j)));
            }
          }
          st(fy, y, t++, s);
        }
      }
    }
  }
}

/** Direct input gradient in the ref engine's order (o, i, j). Geometry: the forward conv's. */
export function conv2dGradInputDirect(
  gy: usize, fg: i32, w: usize, fw: i32, dx: usize, fd: i32, o: i32, cg: i32, groups: i32, acc: i32,
): void {
  const og = o / groups;
  let t = 0;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const grp = c / cg, cl = c - grp * cg;
      for (let h = 0; h < H; h++) {
        hitting(h + PT, KH, SH, OH);
        const iFirst = hitFirst, iLast = hitLast;
        for (let wi = 0; wi < W; wi++) {
          hitting(wi + PL, KW, SW, OW);
          const jFirst = hitFirst, jLast = hitLast;
          let s: f64 = 0;
          for (let oc = grp * og; oc < (grp + 1) * og; oc++) {
            const gb = (n * o + oc) * OH, wb = (oc * cg + cl) * KH;
            for (let i = iFirst; i <= iLast; i += SH) {
              const gr = (gb + (h + PT - i) / SH) * OW, wr = (wb + i) * KW;
              for (let j = jFirst; j <= jLast; j += SW) {
                s = round(acc, s + round(acc, ld(fg, gy, gr + (wi + PL - j) / SW) * ld(fw, w, wr + j)));
              }
            }
          }
          st(fd, dx, t++, s);
        }
      }
    }
  }
}

/** Direct weight gradient in the ref engine's order (n, p, q). */
export function conv2dGradWeightDirect(
  x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, o: i32, groups: i32, acc: i32,
): void {
  const cg = C / groups, og = o / groups;
  let t = 0;
  for (let oc = 0; oc < o; oc++) {
    const c0 = (oc / og) * cg;
    for (let c = 0; c < cg; c++) {
      for (let i = 0; i < KH; i++) {
        const pLo = max(0, ceilDiv(PT - i, SH)), pHi = min(OH, floorDiv(H - 1 + PT - i, SH) + 1);
        for (let j = 0; j < KW; j++) {
          const qLo = max(0, ceilDiv(PL - j, SW)), qHi = min(OW, floorDiv(W - 1 + PL - j, SW) + 1);
          let s: f64 = 0;
          for (let n = 0; n < N; n++) {
            const gb = (n * o + oc) * OH, xb = (n * C + c0 + c) * H;
            for (let p = pLo; p < pHi; p++) {
              const gr = (gb + p) * OW, xr = (xb + p * SH + i - PT) * W + j - PL;
              for (let q = qLo; q < qHi; q++) {
                s = round(acc, s + round(acc, ld(fg, gy, gr + q) * ld(fx, x, xr + q * SW)));
              }
            }
          }
          st(fd, dw, t++, s);
        }
      }
    }
  }
}

/**
 * Index into x of the first maximum of every window (NaN wins) of planes [nc0, nc1) of the N * C planes,
 * written to `best` (i32 per window).
 */
export function argmaxes(x: usize, fx: i32, best: usize, nc0: i32, nc1: i32): void {
  let win = nc0 * OH * OW;
  for (let nc = nc0; nc < nc1; nc++) {
    for (let p = 0; p < OH; p++) {
      for (let q = 0; q < OW; q++) {
        let tap = 0, bi = 0, bv: f64 = 0;
        for (let i = 0; i < KH; i++) {
          const ih = p * SH + i - PT;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < KW; j++) {
            const iw = q * SW + j - PL;
            if (iw < 0 || iw >= W) continue;
            const idx = (nc * H + ih) * W + iw, v = ld(fx, x, idx);
            if (tap == 0 || (bv == bv && (v > bv || v != v))) {
              bi = idx;
              bv = v;
            }
            tap++;
          }
        }
        store<i32>(best + (<usize>win << 2), bi);
        win++;
      }
    }
  }
}

/** maxpool of planes [nc0, nc1): each window's first maximum (argmaxes first). */
export function maxpool(x: usize, fx: i32, best: usize, y: usize, fy: i32, nc0: i32, nc1: i32): void {
  argmaxes(x, fx, best, nc0, nc1);
  for (let k = nc0 * OH * OW; k < nc1 * OH * OW; k++) st(fy, y, k, ld(fx, x, load<i32>(best + (<usize>k << 2))));
}

/**
 * maxpool's gradient for planes [nc0, nc1): each window's gradient goes to its first maximum, adding in
 * window order (windows never reach outside their plane); `sum` is f64 scratch of the input's size.
 */
export function maxpoolGrad(x: usize, fx: i32, gy: usize, fg: i32, best: usize, dx: usize, fd: i32, sum: usize, acc: i32, nc0: i32, nc1: i32): void {
  argmaxes(x, fx, best, nc0, nc1);
  const a = nc0 * H * W, b = nc1 * H * W;
  memory.fill(sum + (<usize>a << 3), 0, <usize>(b - a) << 3);
  for (let k = nc0 * OH * OW; k < nc1 * OH * OW; k++) {
    const p = sum + (<usize>load<i32>(best + (<usize>k << 2)) << 3);
    store<f64>(p, round(acc, load<f64>(p) + ld(fg, gy, k)));
  }
  for (let i = a; i < b; i++) st(fd, dx, i, load<f64>(sum + (<usize>i << 3)));
}

/**
 * Average pooling (forward when `grad` is false: y = sum of in-bounds taps / count) or its gradient
 * (dx += acc(g / count) over the windows holding a tap, in window order). `sum` is f64 scratch of the
 * output (forward) or input (gradient) size.
 */
export function avgpool(src: usize, fs: i32, dst: usize, fd: i32, sum: usize, grad: bool, acc: i32): void {
  const n = grad ? N * C * H * W : N * C * OH * OW;
  memory.fill(sum, 0, <usize>n << 3);
  let win = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < OH; p++) {
      for (let q = 0; q < OW; q++) {
        const ilo = max(0, PT - p * SH), ihi = min(KH, H + PT - p * SH);
        const jlo = max(0, PL - q * SW), jhi = min(KW, W + PL - q * SW);
        const count = <f64>(max(0, ihi - ilo) * max(0, jhi - jlo));
        let s: f64 = 0;
        const g = grad ? round(acc, ld(fs, src, win) / count) : 0;
        for (let i = ilo; i < ihi; i++) {
          for (let j = jlo; j < jhi; j++) {
            const idx = (nc * H + p * SH + i - PT) * W + q * SW + j - PL;
            if (grad) {
              const a = sum + (<usize>idx << 3);
              store<f64>(a, round(acc, load<f64>(a) + g));
            } else {
              s = round(acc, s + ld(fs, src, idx));
            }
          }
        }
        if (!grad) st(fd, dst, win, s / count);
        win++;
      }
    }
  }
  if (grad) for (let i = 0; i < n; i++) st(fd, dst, i, load<f64>(sum + (<usize>i << 3)));
}
