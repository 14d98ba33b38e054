/**
 * Depthwise convolutions (one filter per channel: groups = channels = filters) when the accumulate format
 * is fp32: the three ops of kernels/ref/window.ts in ref's order over in-bounds taps only, in f32, so every
 * operand value (Infinity and NaN included) gives ref's bits and no finiteness check is needed. On the gemm
 * a depthwise convolution is one product per channel whose A has a single real row: three of every four
 * tile rows are padding, and each channel packs its own panel.
 *
 * SIMD lanes are always different outputs, never parts of one sum: four adjacent pixels of a row (the
 * convolution's outputs, the input gradient's inputs), or the taps j of one kernel row (the weight gradient).
 * A lane whose tap falls outside the input keeps its sum (a select, not a zero product), which is what
 * skipping the tap does. Everything else runs the same sums one output at a time.
 */

import { BF16, FP16, FP32, ldf, stf } from "./format";
import { C, ceilDiv, floorDiv, H, hitFirst, hitLast, hitting, KH, KW, N, OH, OW, PL, PT, SH, SW, W } from "./geometry";
import { ld4, madd, st4 } from "./simd";

/** Elements i, i + 2, i + 4, i + 6 (stride 2) or i..i+3 (stride 1) of `p` in format `fmt`, as f32x4. */
// @ts-ignore: decorator
@inline function ld4Strided(fmt: i32, p: usize, i: i32, stride: i32): v128 {
  const lo = ld4(fmt, p, i);
  return stride == 1 ? lo : i32x4.shuffle(lo, ld4(fmt, p, i + 4), 0, 2, 4, 6);
}

/** Lanes (all ones) whose position first + l * stride lies in [0, size). */
// @ts-ignore: decorator
@inline function within(first: i32, stride: i32, size: i32): v128 {
  const at = i32x4.add(i32x4.splat(first), i32x4.mul(i32x4(0, 1, 2, 3), i32x4.splat(stride)));
  return v128.and(i32x4.ge_s(at, i32x4.splat(0)), i32x4.lt_s(at, i32x4.splat(size)));
}

/** s + x * w in the lanes of `use`; the other lanes keep s (a tap that is not part of their sums). */
// @ts-ignore: decorator
@inline function maddIn(x: v128, w: v128, s: v128, use: v128): v128 {
  return v128.bitselect(madd(x, w, s), s, use);
}

// Reads of masked lanes may start a few values before a row and end up to 8 past it: the arena's slack past
// its last buffer and the tables below its first keep them inside the memory (kernels/wasm/memory.ts).

/**
 * y[n, c, p, q] = sum over (i, j) ascending of x[n, c, p * sh + i - pt, q * sw + j - pl] * w[c, 0, i, j], for
 * planes [nc0, nc1) of the N * C output planes. Strides 1 and 2 run 8, then 4, outputs of a row at a time
 * (two independent chains of sums), lanes whose tap falls outside the input keeping their sums.
 */
export function depthwise(x: usize, fx: i32, w: usize, fw: i32, y: usize, fy: i32, nc0: i32, nc1: i32): void {
  // The common formats and strides as constants, so that each inlined copy loses its format and stride
  // branches inside the tap loops (which were most of its time).
  if (fx == fw && fx != BF16 && SW <= 2) {
    if (fx == FP32 && SW == 1) forward(x, FP32, w, FP32, y, fy, nc0, nc1, 1);
    else if (fx == FP32) forward(x, FP32, w, FP32, y, fy, nc0, nc1, 2);
    else if (SW == 1) forward(x, FP16, w, FP16, y, fy, nc0, nc1, 1);
    else forward(x, FP16, w, FP16, y, fy, nc0, nc1, 2);
  } else forward(x, fx, w, fw, y, fy, nc0, nc1, SW);
}

/** depthwise with stride `sw` (SW). */
// @ts-ignore: decorator
@inline function forward(
  x: usize, fx: i32, w: usize, fw: i32, y: usize, fy: i32, nc0: i32, nc1: i32, sw: i32,
): void {
  const vector = sw <= 2;
  for (let plane = nc0; plane < nc1; plane++) {
    const xp = plane * H * W, wp = (plane % C) * KH * KW;
    let t = plane * OH * OW;
    for (let p = 0; p < OH; p++) {
      const ih0 = p * SH - PT, iLo = max(0, -ih0), iHi = min(KH, H - ih0);
      let q = 0;
      for (; vector && q + 8 <= OW; q += 8, t += 8) {
        const iw0 = q * sw - PL, edge = iw0 < 0 || iw0 + 7 * sw + KW > W;
        let a = f32x4.splat(0), b = a;
        for (let i = iLo; i < iHi; i++) {
          const xr = xp + (ih0 + i) * W + iw0, wr = wp + i * KW;
          for (let j = 0; j < KW; j++) {
            const wv = f32x4.splat(ldf(fw, w, wr + j));
            const xa = ld4Strided(fx, x, xr + j, sw), xb = ld4Strided(fx, x, xr + j + 4 * sw, sw);
            if (edge) {
              a = maddIn(xa, wv, a, within(iw0 + j, sw, W));
              b = maddIn(xb, wv, b, within(iw0 + j + 4 * sw, sw, W));
            } else {
              a = madd(xa, wv, a);
              b = madd(xb, wv, b);
            }
          }
        }
        st4(fy, y, t, a);
        st4(fy, y, t + 4, b);
      }
      for (; vector && q + 4 <= OW; q += 4, t += 4) {
        const iw0 = q * sw - PL;
        let a = f32x4.splat(0);
        for (let i = iLo; i < iHi; i++) {
          const xr = xp + (ih0 + i) * W + iw0, wr = wp + i * KW;
          for (let j = 0; j < KW; j++) {
            a = maddIn(ld4Strided(fx, x, xr + j, sw), f32x4.splat(ldf(fw, w, wr + j)), a, within(iw0 + j, sw, W));
          }
        }
        st4(fy, y, t, a);
      }
      for (; q < OW; q++) {
        const iw0 = q * sw - PL, jLo = max(0, -iw0), jHi = min(KW, W - iw0);
        let s: f32 = 0;
        for (let i = iLo; i < iHi; i++) {
          const xr = xp + (ih0 + i) * W + iw0, wr = wp + i * KW;
          for (let j = jLo; j < jHi; j++) s += ldf(fx, x, xr + j) * ldf(fw, w, wr + j);
        }
        stf(fy, y, t++, s);
      }
    }
  }
}

/**
 * Output gradients of 4 adjacent input pixels for tap column j, whose first pixel reads (padded) position
 * `pos` (= w + pl - j): lane l the gradient at output column (pos + l) / stride, for stride 1 or 2; lanes the
 * tap does not hit hold other values and are masked by hits().
 */
// @ts-ignore: decorator
@inline function gradLanes(fg: i32, gy: usize, row: i32, pos: i32, stride: i32): v128 {
  if (stride == 1) return ld4(fg, gy, row + pos);
  const v = ld4(fg, gy, row + (pos >> 1));
  // Even pos: lanes 0 and 2 hit columns pos / 2 and pos / 2 + 1; odd: lanes 1 and 3, one column on.
  return pos & 1 ? i32x4.shuffle(v, v, 1, 1, 2, 2) : i32x4.shuffle(v, v, 0, 0, 1, 1);
}

/** Lanes whose padded position pos + l is read by an output column: in range and a multiple of the stride. */
// @ts-ignore: decorator
@inline function hits(pos: i32, stride: i32): v128 {
  const inRange = within(pos, 1, OW * stride);
  if (stride == 1) return inRange;
  const at = i32x4.add(i32x4.splat(pos), i32x4(0, 1, 2, 3));
  return v128.and(inRange, i32x4.eq(v128.and(at, i32x4.splat(1)), i32x4.splat(0)));
}

/**
 * dx[n, c, h, w] = sum over the taps (i, j) ascending that read input pixel (h, w) of gy[n, c, p, q] *
 * w[c, 0, i, j] (p * sh + i - pt = h, q * sw + j - pl = w), for planes [nc0, nc1) of the N * C planes.
 * Strides 1 and 2 run 8, then 4, pixels of a row at a time, lanes that a tap does not hit keeping their sums.
 */
export function depthwiseGradInput(
  gy: usize, fg: i32, w: usize, fw: i32, dx: usize, fd: i32, nc0: i32, nc1: i32,
): void {
  // As depthwise: the common formats and strides as constants.
  if (fg == fw && fg != BF16 && SW <= 2) {
    if (fg == FP32 && SW == 1) gradInput(gy, FP32, w, FP32, dx, fd, nc0, nc1, 1);
    else if (fg == FP32) gradInput(gy, FP32, w, FP32, dx, fd, nc0, nc1, 2);
    else if (SW == 1) gradInput(gy, FP16, w, FP16, dx, fd, nc0, nc1, 1);
    else gradInput(gy, FP16, w, FP16, dx, fd, nc0, nc1, 2);
  } else gradInput(gy, fg, w, fw, dx, fd, nc0, nc1, SW);
}

/** depthwiseGradInput with stride `sw` (SW). */
// @ts-ignore: decorator
@inline function gradInput(
  gy: usize, fg: i32, w: usize, fw: i32, dx: usize, fd: i32, nc0: i32, nc1: i32, sw: i32,
): void {
  const vector = sw <= 2;
  for (let plane = nc0; plane < nc1; plane++) {
    const gp = plane * OH * OW, wp = (plane % C) * KH * KW;
    let t = plane * H * W;
    for (let h = 0; h < H; h++) {
      hitting(h + PT, KH, SH, OH);
      const iFirst = hitFirst, iLast = hitLast;
      let wi = 0;
      for (; vector && wi + 8 <= W; wi += 8, t += 8) {
        // Stride 1 with every tap inside the output row for all 8 pixels: no masks.
        const whole = sw == 1 && wi + PL >= KW - 1 && wi + 7 + PL <= OW - 1;
        let a = f32x4.splat(0), b = a;
        for (let i = iFirst; i <= iLast; i += SH) {
          const gr = gp + ((h + PT - i) / SH) * OW, wr = wp + i * KW;
          for (let j = 0; j < KW; j++) {
            const wv = f32x4.splat(ldf(fw, w, wr + j)), pos = wi + PL - j;
            const ga = gradLanes(fg, gy, gr, pos, sw), gb = gradLanes(fg, gy, gr, pos + 4, sw);
            if (whole) {
              a = madd(ga, wv, a);
              b = madd(gb, wv, b);
            } else {
              a = maddIn(ga, wv, a, hits(pos, sw));
              b = maddIn(gb, wv, b, hits(pos + 4, sw));
            }
          }
        }
        st4(fd, dx, t, a);
        st4(fd, dx, t + 4, b);
      }
      for (; vector && wi + 4 <= W; wi += 4, t += 4) {
        let a = f32x4.splat(0);
        for (let i = iFirst; i <= iLast; i += SH) {
          const gr = gp + ((h + PT - i) / SH) * OW, wr = wp + i * KW;
          for (let j = 0; j < KW; j++) {
            const pos = wi + PL - j;
            a = maddIn(gradLanes(fg, gy, gr, pos, sw), f32x4.splat(ldf(fw, w, wr + j)), a, hits(pos, sw));
          }
        }
        st4(fd, dx, t, a);
      }
      for (; wi < W; wi++) {
        hitting(wi + PL, KW, sw, OW);
        const jFirst = hitFirst, jLast = hitLast;
        let s: f32 = 0;
        for (let i = iFirst; i <= iLast; i += SH) {
          const gr = gp + ((h + PT - i) / SH) * OW, wr = wp + i * KW;
          for (let j = jFirst; j <= jLast; j += sw) s += ldf(fg, gy, gr + (wi + PL - j) / sw) * ldf(fw, w, wr + j);
        }
        stf(fd, dx, t++, s);
      }
    }
  }
}

/**
 * dw[c, 0, i, j] = sum over (n, p, q) ascending of gy[n, c, p, q] * x[n, c, p * sh + i - pt, q * sw + j - pl]
 * over in-bounds taps, for channels [c0, c1) and kernels at most 4 wide (the host sends wider ones to the
 * gemm). A kernel row of taps is one vector of sums, two channels at a time (two independent chains); a column
 * q whose taps are not all inside the row adds only its lanes that are (the rest keep their sums).
 */
export function depthwiseGradWeight(
  x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, c0: i32, c1: i32,
): void {
  // As depthwise: the common formats as constants.
  if (fx == fg && fx == FP32) gradWeight(x, FP32, gy, FP32, dw, fd, c0, c1);
  else if (fx == fg && fx == FP16) gradWeight(x, FP16, gy, FP16, dw, fd, c0, c1);
  else gradWeight(x, fx, gy, fg, dw, fd, c0, c1);
}

// @ts-ignore: decorator
@inline function gradWeight(x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, c0: i32, c1: i32): void {
  let c = c0;
  for (; c + 2 <= c1; c += 2) weightRows(x, fx, gy, fg, dw, fd, c, true);
  if (c < c1) weightRows(x, fx, gy, fg, dw, fd, c, false);
}

/** The weight gradient of channel c, and of channel c + 1 beside it when `two`. */
// @ts-ignore: decorator
@inline function weightRows(x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, c: i32, two: bool): void {
  const gPlane = OH * OW, xPlane = H * W;
  for (let i = 0; i < KH; i++) {
    const pLo = max(0, ceilDiv(PT - i, SH)), pHi = min(OH, floorDiv(H - 1 + PT - i, SH) + 1);
    let a = f32x4.splat(0), b = a;
    for (let n = 0; n < N; n++) {
      const gb = (n * C + c) * gPlane, xb = (n * C + c) * H;
      for (let p = pLo; p < pHi; p++) {
        const gr = gb + p * OW, xr = (xb + p * SH + i - PT) * W - PL;
        for (let q = 0; q < OW; q++) {
          const col = q * SW - PL, xq = xr + q * SW;
          const ga = f32x4.splat(ldf(fg, gy, gr + q)), xa = ld4(fx, x, xq);
          const gb2 = two ? f32x4.splat(ldf(fg, gy, gr + gPlane + q)) : ga, xb2 = two ? ld4(fx, x, xq + xPlane) : xa;
          if (col >= 0 && col + KW <= W) {
            a = madd(xa, ga, a);
            if (two) b = madd(xb2, gb2, b);
          } else {
            // Lanes of taps inside the row (lanes from KW on are never stored); loads past the row are masked.
            const use = within(col, 1, W);
            a = maddIn(xa, ga, a, use);
            if (two) b = maddIn(xb2, gb2, b, use);
          }
        }
      }
    }
    storeTaps(dw, fd, (c * KH + i) * KW, a);
    if (two) storeTaps(dw, fd, ((c + 1) * KH + i) * KW, b);
  }
}

/** Stores lanes [0, KW) of `s` at elements o.. of dw. */
// @ts-ignore: decorator
@inline function storeTaps(dw: usize, fd: i32, o: i32, s: v128): void {
  stf(fd, dw, o, f32x4.extract_lane(s, 0));
  if (KW > 1) stf(fd, dw, o + 1, f32x4.extract_lane(s, 1));
  if (KW > 2) stf(fd, dw, o + 2, f32x4.extract_lane(s, 2));
  if (KW > 3) stf(fd, dw, o + 3, f32x4.extract_lane(s, 3));
}
