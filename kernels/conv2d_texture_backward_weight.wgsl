// Conv2d weight gradient fed from read-only storage textures (the software family's texture candidates):
//   dw[o, c, kh, kw] += sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// where g is the output gradient (masked by the fused ReLU's output when there is one).
//
// Operands, both packed by conv2d_texture_pack_input.wgsl (NHWC order, a texel = four channels of a pixel):
// - `xt`: the zero-padded input, as the texture-fed forward reads it;
// - `gt`: g zero-padded by p.grad_padding (so that the input gradient, which reads it padded, packs it once):
//   texel ((n * hgp + oh + gp) * wgp + ow + gp) * o4s + o4 = output channels 4 * o4.. at (n, oh, ow), with
//   gp = p.grad_padding and hgp, wgp the padded height and width.
// Thread mapping (the register-blocked GEMM of conv2d_common.wgsl): matrix rows are the reduction indices of
// the forward, (tap, channel), in quads of four channels at one tap; columns are output channels. Invocation
// `lid` owns 4 * rowQuads rows of its own x 4 * columnQuads channels shared by the workgroup, and loops
// over every output position: one x texel per row quad (a window corner moved by the row quad's fixed
// offset, so no padding check) and one g texel per channel quad, then 16 * rowQuads * columnQuads
// four-wide multiply-adds.
//!include conv2d_common.wgsl
//!include conv2d_texels.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var xt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var gt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// Row quad q = tap * c4s + c4 (clamped to the last): its offset in xt from a window's corner.
fn rowOffset(q: u32) -> u32 {
  let c4s = (p.in_channels + 3u) / 4u;
  let last = p.kernel * p.kernel * c4s - 1u;
  let rq = min(q, last);
  let tap = rq / c4s;
  let wp = p.width + 2u * p.padding;
  return ((tap / p.kernel) * wp + tap % p.kernel) * c4s + rq % c4s;
}

// The output gradient's channel quads o4.. at the output position whose first texel is l.
fn channels(o4: u32, last: u32, l: u32) -> Quads {
  return Quads(textureLoad(gt, texel(l + min(o4, last))), textureLoad(gt, texel(l + min(o4 + 1u, last))),
               textureLoad(gt, texel(l + min(o4 + 2u, last))), textureLoad(gt, texel(l + min(o4 + 3u, last))),
               textureLoad(gt, texel(l + min(o4 + 4u, last))), textureLoad(gt, texel(l + min(o4 + 5u, last))),
               textureLoad(gt, texel(l + min(o4 + 6u, last))), textureLoad(gt, texel(l + min(o4 + 7u, last))));
}

// Adds one accumulator into dw: acc[t][r] is row `row + r` (channel 4 * c4 + r at the quad's tap), output
// channel o + t.
fn store(acc: mat4x4f, row: u32, o: u32) {
  let c4s = (p.in_channels + 3u) / 4u;
  let q = row / 4u;
  if (q >= p.kernel * p.kernel * c4s) {
    return;
  }
  let kk = p.kernel * p.kernel;
  let tap = q / c4s;
  let c = (q % c4s) * 4u;
  for (var r = 0u; r < 4u; r++) {
    if (c + r < p.in_channels) {
      for (var t = 0u; t < 4u; t++) {
        if (o + t < p.out_channels) {
          let at = ((o + t) * p.in_channels + c + r) * kk + tap;
          dw[at] += acc[t][r];
        }
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let c4s = (p.in_channels + 3u) / 4u;
  let origin = blockOrigin(wid, nwg, lid, p.kernel * p.kernel * c4s * 4u);
  let q = origin.x / 4u;
  let r0 = rowOffset(q);
  let r1 = rowOffset(q + 1u);
  let r2 = rowOffset(q + 2u);
  let r3 = rowOffset(q + 3u);
  let o4 = origin.y / 4u;
  let last = (p.out_channels + 3u) / 4u - 1u;
  let hp = p.height + 2u * p.padding;
  let wp = p.width + 2u * p.padding;
  let rowStep = p.stride * wp * c4s;
  let o4s = last + 1u;
  let gp = p.grad_padding;
  let wgp = p.out_width + 2u * gp;
  let hgp = p.out_height + 2u * gp;
  var acc = Block();
  // Output positions in order, the window corner and the gradient's texel moved along with them: one flat
  // loop, as the forward's.
  var at = 0u;
  var rowStart = 0u;
  var gAt = (gp * wgp + gp) * o4s;
  var ow = 0u;
  var oh = 0u;
  var n = 0u;
  for (var pos = 0u; pos < p.n * p.out_height * p.out_width; pos++) {
    var rows = RowValues(textureLoad(xt, texel(at + r0)), vec4f(), vec4f(), vec4f());
    if (rowQuads > 1u) { rows.q1 = textureLoad(xt, texel(at + r1)); }
    if (rowQuads > 2u) { rows.q2 = textureLoad(xt, texel(at + r2)); }
    if (rowQuads > 3u) { rows.q3 = textureLoad(xt, texel(at + r3)); }
    acc = accumulateBlock(acc, rows, channels(o4, last, gAt));
    ow += 1u;
    at += p.stride * c4s;
    gAt += o4s;
    if (ow == p.out_width) {
      ow = 0u;
      oh += 1u;
      rowStart += rowStep;
      if (oh == p.out_height) {
        oh = 0u;
        n += 1u;
        rowStart = n * hp * wp * c4s;
      }
      at = rowStart;
      gAt = ((n * hgp + oh + gp) * wgp + gp) * o4s;
    }
  }
  storeBlock(acc, origin.x, origin.y);
}
