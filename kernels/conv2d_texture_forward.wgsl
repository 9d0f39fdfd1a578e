// Conv2d forward as an implicit GEMM fed from read-only storage textures (the software family's texture
// candidates): y[n, o, oh, ow] = bias[o] + sum over (kh, kw, c) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh,
// ow*s - p + kw], with fuseRelu applying max(., 0) in the epilogue.
//
// Why textures: this llvmpipe compiles a storage-buffer load into a per-lane loop with mask and bounds
// branches, a read-only storage texture load into a branch-free gather (`bench --probe` measures both).
// Operands (packed by conv2d_texture_pack_input.wgsl and conv2d_texture_pack_weight.wgsl):
// - `xt`: the zero-padded input in NHWC order, a texel = four channels of one pixel, so one load per
//   position gives four reduction steps and no tap needs a padding check;
// - `wt`: texel (o4, r) = output channels 4 * o4.. at reduction step r, in the same (tap, channel) order.
// Thread mapping (the register-blocked GEMM of conv2d_common.wgsl): matrix rows are output positions
// (flattened over n, oh, ow), columns are output channels. Invocation `lid` owns 4 * rowQuads positions of
// its own x 4 * columnQuads channels shared by the workgroup; per four reduction steps it loads one x texel
// per position and one w texel per channel quad and step, then does 16 * rowQuads * columnQuads
// four-wide multiply-adds (the x texels of a position quad, transposed, are the row values of the steps).
override fuseRelu: bool = false;

//!include conv2d_common.wgsl
//!include conv2d_texels.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var xt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var wt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Texel index in xt of the window corners (tap 0, channel quad 0) of positions q..q+3 (clamped: positions
// past the end compute values that are never stored).
fn corners(q: u32) -> vec4u {
  let ohw = p.out_height * p.out_width;
  let pos = clampedQuad(q, p.n * ohw);
  let r = pos % ohw;
  let ih = (r / p.out_width) * p.stride;
  let iw = (r % p.out_width) * p.stride;
  let hp = p.height + 2u * p.padding;
  let wp = p.width + 2u * p.padding;
  return (((pos / ohw) * hp + ih) * wp + iw) * ((p.in_channels + 3u) / 4u);
}

// Four positions' texels at offset `at` past their corners, transposed: column j holds reduction step j of
// the four positions.
fn gather(corner: vec4u, at: u32) -> mat4x4f {
  let l = corner + vec4u(at);
  return transpose(mat4x4f(textureLoad(xt, texel(l.x)), textureLoad(xt, texel(l.y)),
                           textureLoad(xt, texel(l.z)), textureLoad(xt, texel(l.w))));
}

// The weights of the workgroup's channel quads at reduction step r (quads past the last are clamped).
fn weights(o4: u32, last: u32, r: u32) -> Quads {
  return Quads(textureLoad(wt, vec2u(min(o4, last), r)), textureLoad(wt, vec2u(min(o4 + 1u, last), r)),
               textureLoad(wt, vec2u(min(o4 + 2u, last), r)), textureLoad(wt, vec2u(min(o4 + 3u, last), r)),
               textureLoad(wt, vec2u(min(o4 + 4u, last), r)), textureLoad(wt, vec2u(min(o4 + 5u, last), r)),
               textureLoad(wt, vec2u(min(o4 + 6u, last), r)), textureLoad(wt, vec2u(min(o4 + 7u, last), r)));
}

// Adds bias, applies the optional ReLU and writes one accumulator: acc[c][r] is position q + r, channel o + c.
fn store(acc: mat4x4f, q: u32, o: u32) {
  let ohw = p.out_height * p.out_width;
  for (var r = 0u; r < 4u; r++) {
    if (q + r >= p.n * ohw) {
      return;
    }
    let n = (q + r) / ohw;
    let at = (q + r) % ohw;
    for (var c = 0u; c < 4u; c++) {
      if (o + c < p.out_channels) {
        var v = acc[c][r] + bias[o + c];
        if (fuseRelu) {
          v = max(v, 0.0);
        }
        y[(n * p.out_channels + o + c) * ohw + at] = v;
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let origin = blockOrigin(wid, nwg, lid, p.n * p.out_height * p.out_width);
  let q0 = corners(origin.x);
  let q1 = corners(origin.x + 4u);
  let q2 = corners(origin.x + 8u);
  let q3 = corners(origin.x + 12u);
  let o4 = origin.y / 4u;
  let last = (p.out_channels + 3u) / 4u - 1u;
  let c4s = (p.in_channels + 3u) / 4u;
  let wp = p.width + 2u * p.padding;
  var acc = Block();
  // One flat loop over (kh, kw, channel quad), quads fastest, as conv2d_forward.wgsl's.
  var kh = 0u;
  var kw = 0u;
  var c4 = 0u;
  var tap = 0u;
  for (var step = 0u; step < p.kernel * p.kernel * c4s; step++) {
    let at = tap + c4;
    var m0 = gather(q0, at);
    var m1 = mat4x4f();
    var m2 = mat4x4f();
    var m3 = mat4x4f();
    if (rowQuads > 1u) { m1 = gather(q1, at); }
    if (rowQuads > 2u) { m2 = gather(q2, at); }
    if (rowQuads > 3u) { m3 = gather(q3, at); }
    let r = step * 4u;
    acc = accumulateBlock(acc, RowValues(m0[0], m1[0], m2[0], m3[0]), weights(o4, last, r));
    acc = accumulateBlock(acc, RowValues(m0[1], m1[1], m2[1], m3[1]), weights(o4, last, r + 1u));
    acc = accumulateBlock(acc, RowValues(m0[2], m1[2], m2[2], m3[2]), weights(o4, last, r + 2u));
    acc = accumulateBlock(acc, RowValues(m0[3], m1[3], m2[3], m3[3]), weights(o4, last, r + 3u));
    c4 += 1u;
    if (c4 == c4s) {
      c4 = 0u;
      kw += 1u;
      if (kw == p.kernel) {
        kw = 0u;
        kh += 1u;
      }
      tap = (kh * wp + kw) * c4s;
    }
  }
  storeBlock(acc, origin.x, origin.y);
}
