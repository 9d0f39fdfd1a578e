// Float64 CPU reference for PyTorch's F.interpolate(mode="bilinear", align_corners=False) on uint8 images
// scaled to [0, 1], written independently of the WGSL kernel.

/** Resizes n images [h, w] of bytes to [n, 1, size, size] floats of pixel / 255. */
export function resizeBilinearRef(
  pixels: ArrayLike<number>,
  n: number,
  h: number,
  w: number,
  size: number,
): Float64Array {
  // PyTorch's area_pixel_compute_source_index for align_corners=False: clamp negatives to 0, then the
  // upper neighbour is clamped to the last row/column.
  const source = (dst: number, inSize: number): [number, number, number] => {
    const real = Math.max((inSize / size) * (dst + 0.5) - 0.5, 0);
    const lo = Math.floor(real);
    const hi = lo < inSize - 1 ? lo + 1 : lo;
    return [lo, hi, real - lo];
  };
  const out = new Float64Array(n * size * size);
  for (let k = 0; k < n; k++) {
    const at = (r: number, c: number) => pixels[k * h * w + r * w + c] / 255;
    for (let i = 0; i < size; i++) {
      const [r0, r1, ty] = source(i, h);
      for (let j = 0; j < size; j++) {
        const [c0, c1, tx] = source(j, w);
        out[(k * size + i) * size + j] = (1 - ty) * ((1 - tx) * at(r0, c0) + tx * at(r0, c1)) +
          ty * ((1 - tx) * at(r1, c0) + tx * at(r1, c1));
      }
    }
  }
  return out;
}
