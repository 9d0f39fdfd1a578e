// Packs a conv's input x [n, c, h, w] (NCHW, a storage buffer) into the rgba32float texture the texture-fed
// kernels read: the zero-padded image in NHWC order with channels in quads, texel
// l = ((n * hp + ih) * wp + iw) * c4s + c4 (hp = h + 2 * padding, wp likewise, c4s = ceil(c / 4)) holding
// channels 4 * c4.. of pixel (ih - padding, iw - padding), zeros in the padding and past the last channel.
// With the padding in the texture the conv reads every tap unchecked, and a texel gives four reduction
// steps at once. One invocation per texel.
struct Params {
  n: u32,
  in_channels: u32,
  height: u32,
  width: u32,
  padding: u32,
}

//!include conv2d_texels.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let l = (wid.x + wid.y * nwg.x) * 64u + lid;
  let c4s = (p.in_channels + 3u) / 4u;
  let hp = p.height + 2u * p.padding;
  let wp = p.width + 2u * p.padding;
  if (l >= p.n * hp * wp * c4s) {
    return;
  }
  let pixel = l / c4s;
  let c = (l % c4s) * 4u;
  let ih = i32((pixel / wp) % hp) - i32(p.padding);
  let iw = i32(pixel % wp) - i32(p.padding);
  let n = pixel / (wp * hp);
  var v = vec4f(0.0);
  if (u32(ih) < p.height && u32(iw) < p.width) {
    let plane = p.height * p.width;
    let at = (n * p.in_channels + c) * plane + u32(ih) * p.width + u32(iw);
    for (var j = 0u; j < 4u; j++) {
      if (c + j < p.in_channels) {
        v[j] = x[at + j * plane];
      }
    }
  }
  textureStore(packed, texel(l), v);
}
