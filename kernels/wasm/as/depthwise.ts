/**
 * Depthwise convolutions (one filter per channel: groups = channels = filters) when the accumulate format
 * is fp32: the three ops of kernels/ref/window.ts in ref's order over in-bounds taps only, in f32, so every
 * operand value (Infinity and NaN included) gives ref's bits and no finiteness check is needed. On the gemm
 * a depthwise convolution is one product per channel whose A has a single real row: three of every four
 * tile rows are padding, and each channel packs its own panel.
 *
 * SIMD lanes are always different outputs, never parts of one sum: four adjacent output pixels of a row
 * (the convolution and its input gradient, where every lane's window is whole), or the taps j of one kernel
 * row (the weight gradient). Everything else runs the same sums one output at a time.
 */

import { ldf, stf } from "./format";
import { C, ceilDiv, floorDiv, H, hitFirst, hitLast, hitting, KH, KW, N, OH, OW, PL, PT, SH, SW, W } from "./geometry";
import { ld4, madd, st4 } from "./simd";

/** Elements i, i + 2, i + 4, i + 6 (stride 2) or i..i+3 (stride 1) of `p` in format `fmt`, as f32x4. */
// @ts-ignore: decorator
@inline function ld4Strided(fmt: i32, p: usize, i: i32, stride: i32): v128 {
  const lo = ld4(fmt, p, i);
  return stride == 1 ? lo : i32x4.shuffle(lo, ld4(fmt, p, i + 4), 0, 2, 4, 6);
}

/**
 * y[n, c, p, q] = sum over (i, j) ascending of x[n, c, p * sh + i - pt, q * sw + j - pl] * w[c, 0, i, j], for
 * planes [nc0, nc1) of the N * C output planes.
 */
export function depthwise(x: usize, fx: i32, w: usize, fw: i32, y: usize, fy: i32, nc0: i32, nc1: i32): void {
  for (let plane = nc0; plane < nc1; plane++) {
    const xp = plane * H * W, wp = (plane % C) * KH * KW;
    let t = plane * OH * OW;
    for (let p = 0; p < OH; p++) {
      const ih0 = p * SH - PT, iLo = max(0, -ih0), iHi = min(KH, H - ih0);
      for (let q = 0; q < OW;) {
        const iw0 = q * SW - PL;
        // Four whole windows, read as vectors that stay inside the row (stride 2 reads 8 values per tap).
        if (SW <= 2 && q + 4 <= OW && iw0 >= 0 && iw0 + 4 * SW + KW - 1 <= W) {
          let s = f32x4.splat(0);
          for (let i = iLo; i < iHi; i++) {
            const xr = xp + (ih0 + i) * W + iw0, wr = wp + i * KW;
            for (let j = 0; j < KW; j++) s = madd(ld4Strided(fx, x, xr + j, SW), f32x4.splat(ldf(fw, w, wr + j)), s);
          }
          st4(fy, y, t, s);
          q += 4;
          t += 4;
          continue;
        }
        const jLo = max(0, -iw0), jHi = min(KW, W - iw0);
        let s: f32 = 0;
        for (let i = iLo; i < iHi; i++) {
          const xr = xp + (ih0 + i) * W + iw0, wr = wp + i * KW;
          for (let j = jLo; j < jHi; j++) s += ldf(fx, x, xr + j) * ldf(fw, w, wr + j);
        }
        stf(fy, y, t++, s);
        q++;
      }
    }
  }
}

/**
 * dx[n, c, h, w] = sum over the taps (i, j) ascending that read input pixel (h, w) of gy[n, c, p, q] *
 * w[c, 0, i, j] (p * sh + i - pt = h, q * sw + j - pl = w), for planes [nc0, nc1) of the N * C planes.
 */
export function depthwiseGradInput(
  gy: usize, fg: i32, w: usize, fw: i32, dx: usize, fd: i32, nc0: i32, nc1: i32,
): void {
  for (let plane = nc0; plane < nc1; plane++) {
    const gp = plane * OH * OW, wp = (plane % C) * KH * KW;
    let t = plane * H * W;
    for (let h = 0; h < H; h++) {
      hitting(h + PT, KH, SH, OH);
      const iFirst = hitFirst, iLast = hitLast;
      for (let wi = 0; wi < W;) {
        // Stride 1: four pixels that every tap j reads, from four adjacent gradients.
        if (SW == 1 && wi + PL >= KW - 1 && wi + 3 + PL <= OW - 1) {
          let s = f32x4.splat(0);
          for (let i = iFirst; i <= iLast; i += SH) {
            const gr = gp + ((h + PT - i) / SH) * OW + wi + PL, wr = wp + i * KW;
            for (let j = 0; j < KW; j++) s = madd(ld4(fg, gy, gr - j), f32x4.splat(ldf(fw, w, wr + j)), s);
          }
          st4(fd, dx, t, s);
          wi += 4;
          t += 4;
          continue;
        }
        hitting(wi + PL, KW, SW, OW);
        const jFirst = hitFirst, jLast = hitLast;
        let s: f32 = 0;
        for (let i = iFirst; i <= iLast; i += SH) {
          const gr = gp + ((h + PT - i) / SH) * OW, wr = wp + i * KW;
          for (let j = jFirst; j <= jLast; j += SW) s += ldf(fg, gy, gr + (wi + PL - j) / SW) * ldf(fw, w, wr + j);
        }
        stf(fd, dx, t++, s);
        wi++;
      }
    }
  }
}

/**
 * dw[c, 0, i, j] = sum over (n, p, q) ascending of gy[n, c, p, q] * x[n, c, p * sh + i - pt, q * sw + j - pl]
 * over in-bounds taps, for channels [c0, c1). A kernel row of up to 4 taps is one vector of sums; a column q
 * whose taps are not all inside the row adds only its lanes that are (the rest keep their sums).
 */
export function depthwiseGradWeight(
  x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, c0: i32, c1: i32,
): void {
  if (KW > 4) return depthwiseGradWeightScalar(x, fx, gy, fg, dw, fd, c0, c1);
  for (let c = c0; c < c1; c++) {
    for (let i = 0; i < KH; i++) {
      const pLo = max(0, ceilDiv(PT - i, SH)), pHi = min(OH, floorDiv(H - 1 + PT - i, SH) + 1);
      let s = f32x4.splat(0);
      for (let n = 0; n < N; n++) {
        const gb = (n * C + c) * OH * OW, xb = (n * C + c) * H;
        for (let p = pLo; p < pHi; p++) {
          const gr = gb + p * OW, xr = (xb + p * SH + i - PT) * W - PL;
          for (let q = 0; q < OW; q++) {
            const g = f32x4.splat(ldf(fg, gy, gr + q)), col = q * SW - PL;
            if (col >= 0 && col + 4 <= W) {
              s = madd(g, ld4(fx, x, xr + q * SW), s);
              continue;
            }
            // Lanes whose tap is outside the row (or past KW) read nothing and keep their sums.
            let v = f32x4.splat(0), keep = i32x4.splat(-1);
            if (col >= 0 && col < W && 0 < KW) {
              v = f32x4.replace_lane(v, 0, ldf(fx, x, xr + q * SW));
              keep = i32x4.replace_lane(keep, 0, 0);
            }
            if (col + 1 >= 0 && col + 1 < W && 1 < KW) {
              v = f32x4.replace_lane(v, 1, ldf(fx, x, xr + q * SW + 1));
              keep = i32x4.replace_lane(keep, 1, 0);
            }
            if (col + 2 >= 0 && col + 2 < W && 2 < KW) {
              v = f32x4.replace_lane(v, 2, ldf(fx, x, xr + q * SW + 2));
              keep = i32x4.replace_lane(keep, 2, 0);
            }
            if (col + 3 >= 0 && col + 3 < W && 3 < KW) {
              v = f32x4.replace_lane(v, 3, ldf(fx, x, xr + q * SW + 3));
              keep = i32x4.replace_lane(keep, 3, 0);
            }
            s = v128.bitselect(s, madd(g, v, s), keep);
          }
        }
      }
      const o = (c * KH + i) * KW;
      stf(fd, dw, o, f32x4.extract_lane(s, 0));
      if (KW > 1) stf(fd, dw, o + 1, f32x4.extract_lane(s, 1));
      if (KW > 2) stf(fd, dw, o + 2, f32x4.extract_lane(s, 2));
      if (KW > 3) stf(fd, dw, o + 3, f32x4.extract_lane(s, 3));
    }
  }
}

/** depthwiseGradWeight one sum at a time, for kernels wider than a vector. */
function depthwiseGradWeightScalar(
  x: usize, fx: i32, gy: usize, fg: i32, dw: usize, fd: i32, c0: i32, c1: i32,
): void {
  for (let c = c0; c < c1; c++) {
    for (let i = 0; i < KH; i++) {
      const pLo = max(0, ceilDiv(PT - i, SH)), pHi = min(OH, floorDiv(H - 1 + PT - i, SH) + 1);
      for (let j = 0; j < KW; j++) {
        const qLo = max(0, ceilDiv(PL - j, SW)), qHi = min(OW, floorDiv(W - 1 + PL - j, SW) + 1);
        let s: f32 = 0;
        for (let n = 0; n < N; n++) {
          const gb = (n * C + c) * OH * OW, xb = (n * C + c) * H;
          for (let p = pLo; p < pHi; p++) {
            const gr = gb + p * OW, xr = (xb + p * SH + i - PT) * W + j - PL;
            for (let q = qLo; q < qHi; q++) s += ldf(fg, gy, gr + q) * ldf(fx, x, xr + q * SW);
          }
        }
        stf(fd, dw, (c * KH + i) * KW + j, s);
      }
    }
  }
}
