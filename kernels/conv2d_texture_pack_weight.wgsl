// Packs conv weights w [out, in, k, k] (OIHW, a storage buffer) into the rgba32float texture the texture-fed
// forward reads: texel (o4, r) holds output channels 4 * o4.. of reduction step r = (tap * c4s + c4) * 4 + j
// (tap = kh * k + kw, input channel c = 4 * c4 + j, c4s = ceil(in / 4)), zeros past the last channel either
// way: the reduction order of conv2d_texture_pack_input.wgsl's texels. One invocation per texel.
// With `transposed`, the weights of the transposed convolution instead (the input gradient of a stride-1
// conv is the forward over the output gradient with them): w'[c, o, kh, kw] = w[o, c, k-1-kh, k-1-kw], where
// Params describe that convolution (in_channels = the conv's output channels, out_channels its inputs).
override transposed: bool = false;

struct Params {
  in_channels: u32,
  out_channels: u32,
  kernel: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var packed: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * 64u + lid;
  let o4s = (p.out_channels + 3u) / 4u;
  let c4s = (p.in_channels + 3u) / 4u;
  let kk = p.kernel * p.kernel;
  if (t >= o4s * kk * c4s * 4u) {
    return;
  }
  let o4 = t % o4s;
  let r = t / o4s;
  let c = r % (c4s * 4u);
  let tap = r / (c4s * 4u);
  var v = vec4f(0.0);
  if (c < p.in_channels) {
    for (var i = 0u; i < 4u; i++) {
      let o = o4 * 4u + i;
      if (o < p.out_channels) {
        v[i] = w[select((o * p.in_channels + c) * kk + tap, (c * p.out_channels + o) * kk + kk - 1u - tap,
                        transposed)];
      }
    }
  }
  textureStore(packed, vec2u(o4, r), v);
}
