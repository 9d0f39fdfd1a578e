// `deno task bench --probe`: what one operand access costs on this adapter, inside the loop it matters in.
// Every entry point runs the same register-blocked GEMM loop (a 12 x 8 block of conv2d_common.wgsl per
// invocation: per step, 3 row quads that differ per lane and 2 column quads the same in every lane, then 96
// four-wide multiply-adds) and differs only in where the operands come from: nowhere (`none`, values made
// from the loop index: the arithmetic alone), a storage buffer (vec4 or four scalars) or a read-only storage
// texture (rgba32float, or four r32float). Time minus `none`'s, over the accesses made, is an access's cost.
// Addresses cycle through 256 texels, so every access hits the cache: this measures the access path, not
// memory bandwidth. The block is set by the probe (rowQuads 3, columnQuads 2).
//!include conv2d_common.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> b4: array<vec4f>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var t4: texture_storage_2d<rgba32float, read>;
@group(0) @binding(4) var t1: texture_storage_2d<r32float, read>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// Texels (or vec4s) the addresses cycle through.
const MASK = 255u;

// The loop's trip count arrives as Params.n (the conv layout is reused: no other field is read).
fn store(acc: mat4x4f, row: u32, column: u32) {
  out[row * 8u + column] = dot(acc[0] + acc[1] + acc[2] + acc[3], vec4f(1.0));
}

// One step of the loop: lane `lid`'s three row quads and the two column quads every lane shares.
fn probeStep(acc: Block, r0: vec4f, r1: vec4f, r2: vec4f, c0: vec4f, c1: vec4f) -> Block {
  return accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
}

// Quad q of the 256 the addresses cycle through, from each source.
fn bufferVec4(q: u32) -> vec4f {
  return b4[q & MASK];
}

fn bufferScalars(q: u32) -> vec4f {
  let l = (q & MASK) * 4u;
  return vec4f(b1[l], b1[l + 1u], b1[l + 2u], b1[l + 3u]);
}

fn textureRgba(q: u32) -> vec4f {
  return textureLoad(t4, vec2u(q & MASK, 0u));
}

fn textureR32(q: u32) -> vec4f {
  let l = (q & MASK) * 4u;
  return vec4f(textureLoad(t1, vec2u(l, 0u)).x, textureLoad(t1, vec2u(l + 1u, 0u)).x,
               textureLoad(t1, vec2u(l + 2u, 0u)).x, textureLoad(t1, vec2u(l + 3u, 0u)).x);
}

@compute @workgroup_size(8)
fn none(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let r = vec4f(f32(i), f32(lid), 1.0, 2.0) * 1e-9;
    let c = vec4f(f32(i), 3.0, 1.0, 2.0) * 1e-9;
    acc = probeStep(acc, r, r, r, c, c);
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn buffer_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let q = i * 8u + lid;
    acc = probeStep(acc, bufferVec4(q), bufferVec4(q + 1u), bufferVec4(q + 2u), bufferVec4(i), bufferVec4(i + 1u));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn buffer_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let q = i * 8u + lid;
    acc = probeStep(acc, bufferScalars(q), bufferScalars(q + 1u), bufferScalars(q + 2u), bufferScalars(i), bufferScalars(i + 1u));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn texture_rgba32float(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let q = i * 8u + lid;
    acc = probeStep(acc, textureRgba(q), textureRgba(q + 1u), textureRgba(q + 2u), textureRgba(i), textureRgba(i + 1u));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn texture_r32float(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let q = i * 8u + lid;
    acc = probeStep(acc, textureR32(q), textureR32(q + 1u), textureR32(q + 2u), textureR32(i), textureR32(i + 1u));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}
