// The native-heap bound every task sets (lib/deno/native_heap.ts). glibc normally raises its mmap threshold to
// the size of the largest mapped block freed so far, after which a block of that size comes from the heap;
// with the bound, a large block still gets its own mapping (mallinfo2's `hblks` counts them). The effect on a
// long run (a flat RSS) is measured by tools/rss.ts, not in CI.
import { ok, strictEqual } from "node:assert/strict";
import { boundNativeHeap } from "../lib/deno/native_heap.ts";

const glibc = Deno.build.os === "linux" && Deno.build.env === "gnu";

Deno.test({
  name: "boundNativeHeap: after a 1 MiB block is freed, a 512 KiB one still gets its own mapping",
  ignore: !glibc,
  fn() {
    strictEqual(boundNativeHeap(), true);
    const libc = Deno.dlopen("libc.so.6", {
      malloc: { parameters: ["usize"], result: "pointer" },
      free: { parameters: ["pointer"], result: "void" },
      // struct mallinfo2: ten size_t; the fourth, hblks, counts the blocks held in their own mappings.
      mallinfo2: { parameters: [], result: { struct: Array(10).fill("usize") } },
    });
    try {
      const mapped = () => new BigUint64Array(libc.symbols.mallinfo2().buffer)[3];
      libc.symbols.free(libc.symbols.malloc(1n << 20n));
      const before = mapped();
      const block = libc.symbols.malloc(512n << 10n);
      const after = mapped();
      libc.symbols.free(block);
      ok(after === before + 1n, `mapped blocks ${before} -> ${after}`);
    } finally {
      libc.close();
    }
  },
});

Deno.test({
  name: "boundNativeHeap reports false off glibc",
  ignore: glibc,
  fn: () => strictEqual(boundNativeHeap(), false),
});
