/**
 * What NiN's last block hands the global average pooling (exercise 4): its output maps for a set of images,
 * and two measures of how much they can still say. Dead channels are classes whose ReLU output is zero for
 * every image and position (the pooled logit is then 0 for every image: the class is decided by the others
 * alone). The effective rank (Roy & Vetterli 2007: exp of the entropy of the normalised singular values of the
 * centred image-by-feature matrix) counts how many directions the features really use, at most the number
 * of classes times positions.
 *
 * @module
 */
import type { Module } from "./module.ts";
import { resizeImages } from "./resize.ts";
import type { Tensor } from "./tensor.ts";
import { epochBatches } from "./data/batches.ts";
import type { Split } from "./data/split.ts";

/** The two measures of {@link headFeatureStats}. */
export interface HeadFeatureStats {
  /** Images measured. */
  images: number;
  /** Channels of the last block's output (the classes). */
  channels: number;
  /** Channels that are zero for every image and position. */
  deadChannels: number;
  /** Effective rank of the centred images x (channels x positions) matrix. */
  effectiveRank: number;
  /** Its largest possible value: min(images - 1, channels x positions). */
  maxRank: number;
}

/**
 * Dead channels and effective rank of `features` (`images` rows of `channels * positions` values, channel
 * major within a row, as an NCHW tensor lays them out).
 *
 * @example
 * ```ts
 * import { featureStats } from "@nin/webgpu";
 * // Two channels, one position, three images; channel 1 is dead; channel 0 varies: rank 1.
 * console.log(featureStats(new Float64Array([1, 0, 2, 0, 3, 0]), 3, 2, 1)); // deadChannels 1, effectiveRank 1
 * ```
 */
export function featureStats(
  features: ArrayLike<number>,
  images: number,
  channels: number,
  positions: number,
): HeadFeatureStats {
  const d = channels * positions;
  let dead = 0;
  for (let c = 0; c < channels; c++) {
    let alive = false;
    for (let n = 0; n < images && !alive; n++) {
      for (let p = 0; p < positions && !alive; p++) alive = features[n * d + c * positions + p] !== 0;
    }
    if (!alive) dead++;
  }
  // Covariance of the centred features (d x d, d small: 10 positions x channels at most 250).
  const mean = new Float64Array(d);
  for (let n = 0; n < images; n++) for (let j = 0; j < d; j++) mean[j] += features[n * d + j] / images;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (let n = 0; n < images; n++) {
    for (let i = 0; i < d; i++) {
      const a = features[n * d + i] - mean[i];
      if (a === 0) continue;
      for (let j = i; j < d; j++) cov[i][j] += a * (features[n * d + j] - mean[j]);
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[i][j] = cov[j][i];
  // Singular values of the centred matrix are the square roots of the covariance's eigenvalues; eigenvalues
  // within float64 rounding of zero (relative to the largest) are zero, not a sliver of another direction.
  const eigenvalues = symmetricEigenvalues(cov);
  const largest = Math.max(0, ...eigenvalues);
  const singular = eigenvalues.map((v) => v > largest * 1e-12 ? Math.sqrt(v) : 0);
  const total = singular.reduce((a, b) => a + b, 0);
  let entropy = 0;
  for (const s of singular) if (s > 0) entropy -= (s / total) * Math.log(s / total);
  return {
    images,
    channels,
    deadChannels: dead,
    effectiveRank: total > 0 ? Math.exp(entropy) : 0,
    maxRank: Math.min(images - 1, d),
  };
}

/** Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (float64; `a` is overwritten). */
function symmetricEigenvalues(a: Float64Array[]): number[] {
  const n = a.length;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i][j] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] === 0) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  return a.map((row, i) => row[i]);
}

/**
 * {@link featureStats} of the output of `net`'s child `head` (for NiN: `"7"`, the last block) on the first
 * `count` images of `split`, batch by batch; `net` is left in evaluation mode.
 *
 * @example
 * ```ts
 * import { headFeatureStats, loadFashionMnist, nin, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const { test } = await loadFashionMnist();
 * console.log(await headFeatureStats(nin(gpu), test, { count: 32, batchSize: 16, resize: 67 }));
 * gpu.destroy();
 * ```
 */
export async function headFeatureStats(
  net: Module,
  split: Split,
  options: { count: number; batchSize: number; resize: number; head?: string },
): Promise<HeadFeatureStats> {
  const gpu = net.parameters()[0].value.gpu;
  const head = options.head ?? "7";
  const children = net.children();
  const last = children.findIndex(([name]) => name === head);
  const rows: Float32Array[] = [];
  let channels = 0, positions = 0;
  net.eval();
  for (
    const b of epochBatches(split, { batchSize: options.batchSize, shuffle: false, limit: options.count })
  ) {
    let x: Tensor = resizeImages(gpu, b.images, b.count, split.height, split.width, options.resize);
    for (const [, child] of children.slice(0, last + 1)) {
      const y = child.forward(x, { training: false, step: 0, sampleOffset: 0 });
      x.dispose();
      x = y;
    }
    [, channels] = x.shape;
    positions = x.shape[2] * x.shape[3];
    rows.push(await x.toArray());
    x.dispose();
  }
  const features = new Float64Array(rows.reduce((s, r) => s + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    features.set(r, offset);
    offset += r.length;
  }
  return featureStats(features, features.length / (channels * positions), channels, positions);
}
