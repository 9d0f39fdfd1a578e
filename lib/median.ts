/**
 * The median of repeated measurements, as every timing in the toolkit reports them.
 *
 * @module
 */

/** The middle value of `values` (the upper middle one for an even count); `values` is not changed. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}
