// Roofline reference: C[M, N] = A[M, K] * B[K, N], row-major, M, N multiples of 32, K a multiple of 4.
// Thread mapping: each invocation owns a 32x32 block of C (rows r0..r0+31, columns c0..c0+31) held as
// 32 x 8 vec4 accumulators; 8 invocations per workgroup. A and B are read straight from storage: on CPU
// adapters (llvmpipe runs a workgroup on one thread, invocations as SIMD lanes) registers and caches beat
// workgroup memory. The bench task measures this kernel as the ceiling the model's kernels are compared to.
struct Params {
  m: u32,
  n: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let block = (wid.x + wid.y * nwg.x) * 8u + lid;
  let blocksPerRow = p.n / 32u;
  if (block >= (p.m / 32u) * blocksPerRow) {
    return;
  }
  let r0 = (block / blocksPerRow) * 32u;
  let c4 = (block % blocksPerRow) * 8u; // column offset in vec4 units
  let n4 = p.n / 4u;
  var acc: array<array<vec4<f32>, 8>, 32>;
  for (var kk = 0u; kk < p.k; kk++) {
    var bRow: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j++) {
      bRow[j] = b[kk * n4 + c4 + j];
    }
    for (var i = 0u; i < 32u; i++) {
      let aik = a[(r0 + i) * p.k + kk];
      for (var j = 0u; j < 8u; j++) {
        acc[i][j] += aik * bRow[j];
      }
    }
  }
  for (var i = 0u; i < 32u; i++) {
    for (var j = 0u; j < 8u; j++) {
      c[(r0 + i) * n4 + c4 + j] = acc[i][j];
    }
  }
}
