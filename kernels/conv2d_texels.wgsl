// Shared by the software family's texture-fed conv kernels (`//!include conv2d_texels.wgsl`): where texel
// number l of a linearly laid out rgba32float texture sits. Such a texture is TEXTURE_WIDTH texels wide (a
// power of two, so the split is a mask and a shift) and as many rows tall as its texels need.
const TEXTURE_WIDTH = 4096u;

fn texel(l: u32) -> vec2u {
  return vec2u(l % TEXTURE_WIDTH, l / TEXTURE_WIDTH);
}
