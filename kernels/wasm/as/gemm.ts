/**
 * The one fast dot-product kernel: C = A B over f32 panels, for matmul and (through gathers) the three
 * convolutions, when the accumulate format is fp32.
 *
 * Why it is exact: each output keeps one f32 running sum that adds the f32-rounded products in ascending
 * k, which is the ref engine's acc(s + acc(a * b)) with acc = fp32 (products of fp32, fp16 or bf16 values
 * are exact in f64, so f32.mul rounds them once, as Math.fround does). SIMD lanes are different outputs,
 * never parts of one sum, and there is no fused multiply-add unless the module is the `--fast` build
 * (relaxed SIMD). Panels are padded with zeros to whole 4 x 8 tiles; a zero tap adds +-0, which leaves
 * every partial sum unchanged, as long as the other operand is finite (the host checks it).
 *
 * Panel layouts: A as blocks of 4 rows, Ap[(ib * K + k) * 4 + r]; B as blocks of 8 columns,
 * Bp[(jb * K + k) * 8 + c], or an f32 B read in place when its rows are whole blocks; C row-major, padded
 * to whole tiles in scratch, or the f32 output itself when that is a whole number of tiles.
 */

import { ld, ldf, round, roundF32, st, stf } from "./format";
import { ld4, madd, round4, st4, storeTransposed4 } from "./simd";

/** K is processed in chunks of this length so a tile's panels stay in cache; sums carry across chunks. */
const KC: i32 = 256;

/** Column blocks a thread sweeps its row blocks over before moving on, so their B panels stay in cache. */
const GROUP: i32 = 8;

/**
 * Packs rows [0, m) of A into Ap. Element (i, k) is read at i * rowStride + (k / kInner) * kOuterStride +
 * (k % kInner) * kInnerStride, which covers plain and transposed matrices and gradients laid out
 * [n, channel, pixel].
 */
export function packA(
  src: usize, fmt: i32, m: i32, k: i32, rowStride: i32, kInner: i32, kOuterStride: i32, kInnerStride: i32,
  dst: usize,
): void {
  const mb = (m + 3) >> 2;
  for (let ib = 0; ib < mb; ib++) {
    const full = ib * 4 + 4 <= m;
    let q = 0;
    // Rows contiguous along k (a plain matrix): 4 x 4 blocks, transposed in registers.
    if (full && kInnerStride == 1 && kInner == k) {
      const r0 = ib * 4 * rowStride;
      for (; q + 4 <= k; q += 4) {
        const x0 = ld4(fmt, src, r0 + q), x1 = ld4(fmt, src, r0 + rowStride + q);
        const x2 = ld4(fmt, src, r0 + 2 * rowStride + q), x3 = ld4(fmt, src, r0 + 3 * rowStride + q);
        storeTransposed4(dst + ((<usize>(ib * k + q) << 2) << 2), 16, x0, x1, x2, x3);
      }
    }
    let kOff = (q / kInner) * kOuterStride + (q % kInner) * kInnerStride, inner = q % kInner;
    // Consecutive rows adjacent in memory (a transposed matrix): one load per k.
    const columns = full && rowStride == 1;
    for (; q < k; q++) {
      const d = dst + ((<usize>(ib * k + q) << 2) << 2);
      if (columns) v128.store(d, ld4(fmt, src, ib * 4 + kOff));
      else {
        for (let r = 0; r < 4; r++) {
          const i = ib * 4 + r;
          store<f32>(d + (<usize>r << 2), i < m ? ldf(fmt, src, i * rowStride + kOff) : 0);
        }
      }
      if (++inner < kInner) kOff += kInnerStride;
      else {
        inner = 0;
        kOff += kOuterStride - (kInner - 1) * kInnerStride;
      }
    }
  }
}

/**
 * Packs columns [0, n) of B [k, n]; element (k, j) is at (k / kInner) * kOuterStride + (k % kInner) * kInnerStride + j * colStride.
 * Row by row: a row's whole blocks of contiguous columns are read in one sweep (four at a time), so each
 * row of a plain B is read once, front to back, instead of once per block. Values are rounded to format `to`
 * as they are packed (a cast fused into the gemm; FP32 for none: every format's values are exact in f32).
 */
export function packB(
  src: usize, fmt: i32, to: i32, k: i32, n: i32, kInner: i32, kOuterStride: i32, kInnerStride: i32, colStride: i32,
  dst: usize,
): void {
  const nb = (n + 7) >> 3, wide = colStride == 1 ? n >> 3 : 0;
  let kOff = 0, inner = 0;
  for (let q = 0; q < k; q++) {
    for (let jb = 0; jb < wide; jb++) {
      const d = dst + ((<usize>(jb * k + q) << 3) << 2);
      v128.store(d, round4(to, ld4(fmt, src, kOff + jb * 8)));
      v128.store(d, round4(to, ld4(fmt, src, kOff + jb * 8 + 4)), 16);
    }
    for (let jb = wide; jb < nb; jb++) {
      const d = dst + ((<usize>(jb * k + q) << 3) << 2);
      for (let c = 0; c < 8; c++) {
        const j = jb * 8 + c;
        store<f32>(d + (<usize>c << 2), j < n ? roundF32(to, ldf(fmt, src, kOff + j * colStride)) : 0);
      }
    }
    if (++inner < kInner) kOff += kInnerStride;
    else {
      inner = 0;
      kOff += kOuterStride - (kInner - 1) * kInnerStride;
    }
  }
}

/**
 * Byte offsets of the fields of a gemm job (i32 each), written by the host (kernels/wasm/lower_window.ts,
 * from the copy kernels/wasm/build.ts generates). B is read at BP + jb * BJB + k * BSTEP (a packed panel, or
 * a plain f32 matrix read in place), and C's rows are CROW floats apart (C is scratch, or the f32 output
 * itself when nothing is left to store). Each thread's i32[8] store scratch starts at THREAD_SCRATCH.
 */
export enum GemmJob {
  AP = 0, BP = 4, C = 8, M = 12, N = 16, K = 20, INIT = 24, STORE = 28, OUT = 32, FMT = 36, BASE = 40, ROW = 44,
  CB = 48, CBS = 52, BSTEP = 56, BJB = 60, CROW = 64, THREAD_SCRATCH = 256,
}

// @ts-ignore: decorator
@inline function field(job: usize, off: i32): i32 {
  return load<i32>(job + <usize>off);
}

/**
 * One 4 x 8 tile of C over k in [k0, k1); starts from zero when `fresh`, else from C. B's rows for this tile
 * start at `pb` and are `bStep` bytes apart; C's rows are `np` floats apart. With `out` set, the sums are
 * final: they are rounded to `fmt` and stored at element `o` of `out` (rows `row` elements apart), not in C.
 */
function tile(
  ap: usize, pb: usize, bStep: usize, c: usize, np: i32, k: i32, ib: i32, jb: i32, k0: i32, k1: i32, fresh: bool,
  out: usize, fmt: i32, o: i32, row: i32,
): void {
  const c0 = c + (<usize>(ib * 4 * np + jb * 8) << 2), rs = <usize>np << 2;
  let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  if (!fresh) {
    a00 = v128.load(c0);
    a01 = v128.load(c0, 16);
    a10 = v128.load(c0 + rs);
    a11 = v128.load(c0 + rs, 16);
    a20 = v128.load(c0 + 2 * rs);
    a21 = v128.load(c0 + 2 * rs, 16);
    a30 = v128.load(c0 + 3 * rs);
    a31 = v128.load(c0 + 3 * rs, 16);
  }
  let pa = ap + (<usize>(ib * k + k0) << 4);
  for (let q = k0; q < k1; q++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let s = v128.load32_splat(pa);
    a00 = madd(s, b0, a00);
    a01 = madd(s, b1, a01);
    s = v128.load32_splat(pa, 4);
    a10 = madd(s, b0, a10);
    a11 = madd(s, b1, a11);
    s = v128.load32_splat(pa, 8);
    a20 = madd(s, b0, a20);
    a21 = madd(s, b1, a21);
    s = v128.load32_splat(pa, 12);
    a30 = madd(s, b0, a30);
    a31 = madd(s, b1, a31);
    pa += 16;
    pb += bStep;
  }
  if (out) {
    // The last chunk of a whole tile whose columns are contiguous in the output: round and store it there.
    st4(fmt, out, o, a00);
    st4(fmt, out, o + 4, a01);
    st4(fmt, out, o + row, a10);
    st4(fmt, out, o + row + 4, a11);
    st4(fmt, out, o + 2 * row, a20);
    st4(fmt, out, o + 2 * row + 4, a21);
    st4(fmt, out, o + 3 * row, a30);
    st4(fmt, out, o + 3 * row + 4, a31);
    return;
  }
  v128.store(c0, a00);
  v128.store(c0, a01, 16);
  v128.store(c0 + rs, a10);
  v128.store(c0 + rs, a11, 16);
  v128.store(c0 + 2 * rs, a20);
  v128.store(c0 + 2 * rs, a21, 16);
  v128.store(c0 + 3 * rs, a30);
  v128.store(c0 + 3 * rs, a31, 16);
}

/** True when tile (ib, jb) of an m x n output has all its 4 rows and 8 columns. */
// @ts-ignore: decorator
@inline function whole(ib: i32, jb: i32, m: i32, n: i32): bool {
  return ib * 4 + 4 <= m && jb * 8 + 8 <= n;
}

/**
 * Runs this thread's share of the tiles of the gemm job at `job`. A product with at least as many column
 * blocks as row blocks (a convolution's: few filters, many pixels) is split by column blocks: each thread
 * takes columns [part * nb / parts, (part + 1) * nb / parts) of every row block, so it reads only its share of
 * the large B panel (and the share it packed). Otherwise tiles [part * T / parts, (part + 1) * T / parts) of
 * the T tiles in (row block, column block) order. Every output is computed by exactly one thread in the same
 * order, so the bits do not depend on the thread count or the split. With `store` set, its tiles' real
 * outputs are rounded to the output format and written at base + i * row + (j / cb) * cbs + j % cb: by the
 * tile itself on its last chunk when it is whole and its columns are contiguous there (cbs = 0), else by a
 * pass after.
 */
export function gemmTiles(job: usize, part: i32, parts: i32): void {
  const m = field(job, GemmJob.M), n = field(job, GemmJob.N), k = field(job, GemmJob.K);
  const mb = (m + 3) >> 2, nb = (n + 7) >> 3, tiles = mb * nb, crow = field(job, GemmJob.CROW);
  const ap = <usize>field(job, GemmJob.AP), bp = <usize>field(job, GemmJob.BP), c = <usize>field(job, GemmJob.C);
  const bStep = <usize>field(job, GemmJob.BSTEP), bJb = <usize>field(job, GemmJob.BJB);
  const init = field(job, GemmJob.INIT) != 0, storing = field(job, GemmJob.STORE) != 0;
  const out = <usize>field(job, GemmJob.OUT), fmt = field(job, GemmJob.FMT), base = field(job, GemmJob.BASE);
  const row = field(job, GemmJob.ROW);
  // Whole tiles whose 8 columns are contiguous in the output store themselves when their sums are final.
  const wholeTiles = storing && field(job, GemmJob.CBS) == 0;
  // Chunks of equal length (784 = 4 x 196, not 3 x 256 + 16); the running sums carry across them exactly.
  const chunks = max(1, (k + KC - 1) / KC), kc = max(1, (k + chunks - 1) / chunks);
  const byColumns = nb >= mb;
  // This thread's tiles: row blocks [ib0, ib1] with columns [t0 % nb ...] (row-major share), or every row
  // block over column blocks [jc0, jc1) (column share).
  const t0 = byColumns ? 0 : <i32>(<i64>tiles * part / parts), t1 = byColumns ? tiles : <i32>(<i64>tiles * (part + 1) / parts);
  const jc0 = byColumns ? <i32>(<i64>nb * part / parts) : 0, jc1 = byColumns ? <i32>(<i64>nb * (part + 1) / parts) : nb;
  const ib0 = t0 / nb, ib1 = (t1 - 1) / nb;
  for (let k0 = 0; k0 < k || k0 == 0; k0 += kc) {
    const k1 = min(k, k0 + kc);
    for (let g0 = jc0; g0 < jc1 && t0 < t1; g0 += GROUP) {
      const g1 = min(jc1, g0 + GROUP);
      for (let ib = ib0; ib <= ib1; ib++) {
        const j0 = max(g0, ib == ib0 ? t0 % nb : 0), j1 = min(g1, ib == ib1 ? (t1 - 1) % nb + 1 : nb);
        for (let jb = j0; jb < j1; jb++) {
          const own = wholeTiles && k1 == k && whole(ib, jb, m, n);
          tile(
            ap, bp + <usize>jb * bJb + <usize>k0 * bStep, bStep, c, crow, k, ib, jb, k0, k1, k0 == 0 && !init,
            own ? out : 0, fmt, base + ib * 4 * row + jb * 8, row,
          );
        }
      }
    }
  }
  if (!storing) return;
  const colOff = job + GemmJob.THREAD_SCRATCH + (<usize>part << 5); // this thread's i32[8] scratch
  for (let t = t0; t < t1; t++) {
    const ib = t / nb, jb = t % nb;
    if (jb < jc0 || jb >= jc1) continue;
    if (wholeTiles && whole(ib, jb, m, n)) continue; // stored by the tile itself
    storeTile(job, c, crow, out, fmt, base, row, colOff, ib, jb, m, n);
  }
}

/** Rounds tile (ib, jb)'s real outputs from C to the output format and stores them (gemmTiles's pass). */
function storeTile(
  job: usize, c: usize, crow: i32, out: usize, fmt: i32, base: i32, row: i32, colOff: usize, ib: i32, jb: i32,
  m: i32, n: i32,
): void {
  const cb = field(job, GemmJob.CB), cbs = field(job, GemmJob.CBS), cols = min(8, n - jb * 8);
  for (let cc = 0; cc < cols; cc++) {
    const j = jb * 8 + cc;
    store<i32>(colOff + (<usize>cc << 2), base + (j / cb) * cbs + j % cb);
  }
  // A full tile whose 8 columns are contiguous in the output stores four at a time.
  const wide = cols == 8 && cbs == 0;
  for (let r = 0; r < 4; r++) {
    const i = ib * 4 + r;
    if (i >= m) break;
    const src = c + (<usize>(i * crow + jb * 8) << 2);
    if (wide) {
      const o = base + i * row + jb * 8;
      st4(fmt, out, o, v128.load(src));
      st4(fmt, out, o + 4, v128.load(src, 16));
      continue;
    }
    for (let cc = 0; cc < cols; cc++) {
      stf(fmt, out, i * row + load<i32>(colOff + (<usize>cc << 2)), load<f32>(src + (<usize>cc << 2)));
    }
  }
}

/**
 * Direct matmul in the ref engine's order for any accumulate format (f64 arithmetic, rounding every
 * product and partial sum to `acc`): C[i, j] over k ascending. Operand (i, k) of A is at
 * i * aRow + k * aCol, (k, j) of B at k * bRow + j * bCol; `sums` is f64[n] scratch.
 */
export function matmulDirect(
  a: usize, fa: i32, aRow: i32, aCol: i32, b: usize, fb: i32, bRow: i32, bCol: i32, y: usize, fy: i32,
  m: i32, k: i32, n: i32, acc: i32, sums: usize,
): void {
  for (let i = 0; i < m; i++) {
    memory.fill(sums, 0, <usize>n << 3);
    for (let q = 0; q < k; q++) {
      const av = ld(fa, a, i * aRow + q * aCol);
      for (let j = 0; j < n; j++) {
        const p = sums + (<usize>j << 3);
        store<f64>(p, round(acc, load<f64>(p) + round(acc, av * ld(fb, b, q * bRow + j * bCol))));
      }
    }
    for (let j = 0; j < n; j++) st(fy, y, i * n + j, load<f64>(sums + (<usize>j << 3)));
  }
}
