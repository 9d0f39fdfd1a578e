// Float64 CPU reference for Conv2d (NCHW input, OIHW weight, PyTorch's zero padding and floor output size),
// written as the plain sums of the definition, independently of the WGSL kernels.

/**
 * One convolution as the reference takes it: the input's shape `[n, c, h, w]` and the layer's own arguments
 * (output channels, square kernel side, stride, zero padding on every side). The weight is
 * `[outChannels, c, kernel, kernel]`.
 */
export interface ConvCase {
  /** Input shape `[n, c, h, w]`. */
  input: readonly number[];
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** A {@link ConvCase} from the input shape and Conv2d's arguments, in Conv2d's order and with its defaults. */
export function convCase(
  input: readonly number[],
  outChannels: number,
  kernel: number,
  stride = 1,
  padding = 0,
): ConvCase {
  return { input, outChannels, kernel, stride, padding };
}

/** Every size the sums below use, by their short names; the output size is floor((size + 2p - k) / s) + 1. */
function sizes(g: ConvCase) {
  const [n, ic, h, wd] = g.input;
  const { outChannels: oc, kernel: k, stride: s, padding: p } = g;
  const out = (size: number) => Math.floor((size + 2 * p - k) / s) + 1;
  return { n, ic, h, wd, oc, oh: out(h), ow: out(wd), k, s, p };
}

/** Output shape `[n, outChannels, oh, ow]`. */
export function convOutputShape(g: ConvCase): number[] {
  const { n, oc, oh, ow } = sizes(g);
  return [n, oc, oh, ow];
}

/** y[n, o, i, j] = b[o] + sum over c, u, v of w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]. */
export function conv2dForwardRef(
  g: ConvCase,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
): Float64Array {
  const { n, ic, h, wd, oc, oh, ow, k, s, p } = sizes(g);
  const y = new Float64Array(n * oc * oh * ow);
  for (let b0 = 0; b0 < n; b0++) {
    for (let o = 0; o < oc; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let sum = b[o];
          for (let c = 0; c < ic; c++) {
            for (let u = 0; u < k; u++) {
              const r = i * s - p + u;
              if (r < 0 || r >= h) continue;
              for (let v = 0; v < k; v++) {
                const col = j * s - p + v;
                if (col < 0 || col >= wd) continue;
                sum += w[((o * ic + c) * k + u) * k + v] * x[((b0 * ic + c) * h + r) * wd + col];
              }
            }
          }
          y[((b0 * oc + o) * oh + i) * ow + j] = sum;
        }
      }
    }
  }
  return y;
}

/**
 * dx[n, c, r, col] = sum over o and the output positions (i, j) whose window covers (r, col) of
 * dy[n, o, i, j] * w[o, c, r - i*s + p, col - j*s + p]: scattered here from each output, the transpose of
 * the forward sum.
 */
export function conv2dBackwardInputRef(
  g: ConvCase,
  dy: ArrayLike<number>,
  w: ArrayLike<number>,
): Float64Array {
  const { n, ic, h, wd, oc, oh, ow, k, s, p } = sizes(g);
  const dx = new Float64Array(n * ic * h * wd);
  for (let b0 = 0; b0 < n; b0++) {
    for (let o = 0; o < oc; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const grad = dy[((b0 * oc + o) * oh + i) * ow + j];
          for (let c = 0; c < ic; c++) {
            for (let u = 0; u < k; u++) {
              const r = i * s - p + u;
              if (r < 0 || r >= h) continue;
              for (let v = 0; v < k; v++) {
                const col = j * s - p + v;
                if (col < 0 || col >= wd) continue;
                dx[((b0 * ic + c) * h + r) * wd + col] += grad * w[((o * ic + c) * k + u) * k + v];
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/** dw[o, c, u, v] = sum over n, i, j of dy[n, o, i, j] * x[n, c, i*s - p + u, j*s - p + v]. */
export function conv2dBackwardWeightRef(
  g: ConvCase,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
): Float64Array {
  const { n, ic, h, wd, oc, oh, ow, k, s, p } = sizes(g);
  const dw = new Float64Array(oc * ic * k * k);
  for (let o = 0; o < oc; o++) {
    for (let c = 0; c < ic; c++) {
      for (let u = 0; u < k; u++) {
        for (let v = 0; v < k; v++) {
          let sum = 0;
          for (let b0 = 0; b0 < n; b0++) {
            for (let i = 0; i < oh; i++) {
              const r = i * s - p + u;
              if (r < 0 || r >= h) continue;
              for (let j = 0; j < ow; j++) {
                const col = j * s - p + v;
                if (col < 0 || col >= wd) continue;
                sum += dy[((b0 * oc + o) * oh + i) * ow + j] * x[((b0 * ic + c) * h + r) * wd + col];
              }
            }
          }
          dw[((o * ic + c) * k + u) * k + v] = sum;
        }
      }
    }
  }
  return dw;
}

/** db[o] = sum over n, i, j of dy[n, o, i, j]. */
export function conv2dBackwardBiasRef(g: ConvCase, dy: ArrayLike<number>): Float64Array {
  const { n, oc, oh, ow } = sizes(g);
  const db = new Float64Array(oc);
  for (let b0 = 0; b0 < n; b0++) {
    for (let o = 0; o < oc; o++) {
      for (let q = 0; q < oh * ow; q++) db[o] += dy[(b0 * oc + o) * oh * ow + q];
    }
  }
  return db;
}
