/**
 * Keeps a long run's native heap from creeping. On glibc, memory that a process frees is returned to the system
 * only from the top of the heap, and the size above which an allocation gets its own mapping grows with the
 * largest block freed so far (up to 32 MiB). A training run frees and reallocates large blocks every step (the
 * driver's uploads and readbacks; on llvmpipe every GPU buffer and texture lives in this heap), so its RSS
 * crept up over thousands of steps while the toolkit's own objects stayed the same (`tools/rss.ts`). With a
 * fixed mmap threshold and trim threshold, large blocks come from mappings that are returned when freed.
 *
 * @module
 */

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/** Blocks of at least this many bytes get their own mapping; free memory above it at the heap's top is returned. */
const LARGE_BLOCK_BYTES = 128 * 1024;

/**
 * Fixes glibc's mmap and trim thresholds at {@link LARGE_BLOCK_BYTES} for this process; returns whether it
 * could (false on other systems or C libraries, or without `--allow-ffi`: nothing changes then).
 *
 * @example
 * ```ts
 * import { boundNativeHeap } from "./native_heap.ts";
 * console.log(boundNativeHeap()); // true on Linux with glibc and --allow-ffi
 * ```
 */
export function boundNativeHeap(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
    try {
      const { mallopt } = libc.symbols;
      return mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES) === 1 &&
        mallopt(M_TRIM_THRESHOLD, LARGE_BLOCK_BYTES) === 1;
    } finally {
      libc.close();
    }
  } catch {
    return false; // no glibc, or no --allow-ffi
  }
}
