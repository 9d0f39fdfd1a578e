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

@compute @workgroup_size(8)
fn none(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let r0 = vec4f(f32(i), f32(lid), 1.0, 2.0) * 1e-9;
    let r1 = vec4f(f32(i), f32(lid), 1.0, 2.0) * 1e-9;
    let r2 = vec4f(f32(i), f32(lid), 1.0, 2.0) * 1e-9;
    let c0 = vec4f(f32(i), 3.0, 1.0, 2.0) * 1e-9;
    let c1 = vec4f(f32(i), 3.0, 1.0, 2.0) * 1e-9;
    acc = accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn buffer_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let r0 = b4[(i * 8u + lid + 0u) & MASK];
    let r1 = b4[(i * 8u + lid + 1u) & MASK];
    let r2 = b4[(i * 8u + lid + 2u) & MASK];
    let c0 = b4[(i + 0u) & MASK];
    let c1 = b4[(i + 1u) & MASK];
    acc = accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn buffer_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let l0 = ((i * 8u + lid + 0u) * 4u) & (4u * MASK);
    let l1 = ((i * 8u + lid + 1u) * 4u) & (4u * MASK);
    let l2 = ((i * 8u + lid + 2u) * 4u) & (4u * MASK);
    let u0 = ((i + 0u) * 4u) & (4u * MASK);
    let u1 = ((i + 1u) * 4u) & (4u * MASK);
    let r0 = vec4f(b1[l0], b1[l0 + 1u], b1[l0 + 2u], b1[l0 + 3u]);
    let r1 = vec4f(b1[l1], b1[l1 + 1u], b1[l1 + 2u], b1[l1 + 3u]);
    let r2 = vec4f(b1[l2], b1[l2 + 1u], b1[l2 + 2u], b1[l2 + 3u]);
    let c0 = vec4f(b1[u0], b1[u0 + 1u], b1[u0 + 2u], b1[u0 + 3u]);
    let c1 = vec4f(b1[u1], b1[u1 + 1u], b1[u1 + 2u], b1[u1 + 3u]);
    acc = accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn texture_rgba32float(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let r0 = textureLoad(t4, vec2u((i * 8u + lid + 0u) & MASK, 0u));
    let r1 = textureLoad(t4, vec2u((i * 8u + lid + 1u) & MASK, 0u));
    let r2 = textureLoad(t4, vec2u((i * 8u + lid + 2u) & MASK, 0u));
    let c0 = textureLoad(t4, vec2u((i + 0u) & MASK, 0u));
    let c1 = textureLoad(t4, vec2u((i + 1u) & MASK, 0u));
    acc = accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}

@compute @workgroup_size(8)
fn texture_r32float(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var acc = Block();
  for (var i = 0u; i < p.n; i++) {
    let l0 = ((i * 8u + lid + 0u) * 4u) & (4u * MASK);
    let l1 = ((i * 8u + lid + 1u) * 4u) & (4u * MASK);
    let l2 = ((i * 8u + lid + 2u) * 4u) & (4u * MASK);
    let u0 = ((i + 0u) * 4u) & (4u * MASK);
    let u1 = ((i + 1u) * 4u) & (4u * MASK);
    let r0 = vec4f(textureLoad(t1, vec2u(l0, 0u)).x, textureLoad(t1, vec2u(l0 + 1u, 0u)).x, textureLoad(t1, vec2u(l0 + 2u, 0u)).x, textureLoad(t1, vec2u(l0 + 3u, 0u)).x);
    let r1 = vec4f(textureLoad(t1, vec2u(l1, 0u)).x, textureLoad(t1, vec2u(l1 + 1u, 0u)).x, textureLoad(t1, vec2u(l1 + 2u, 0u)).x, textureLoad(t1, vec2u(l1 + 3u, 0u)).x);
    let r2 = vec4f(textureLoad(t1, vec2u(l2, 0u)).x, textureLoad(t1, vec2u(l2 + 1u, 0u)).x, textureLoad(t1, vec2u(l2 + 2u, 0u)).x, textureLoad(t1, vec2u(l2 + 3u, 0u)).x);
    let c0 = vec4f(textureLoad(t1, vec2u(u0, 0u)).x, textureLoad(t1, vec2u(u0 + 1u, 0u)).x, textureLoad(t1, vec2u(u0 + 2u, 0u)).x, textureLoad(t1, vec2u(u0 + 3u, 0u)).x);
    let c1 = vec4f(textureLoad(t1, vec2u(u1, 0u)).x, textureLoad(t1, vec2u(u1 + 1u, 0u)).x, textureLoad(t1, vec2u(u1 + 2u, 0u)).x, textureLoad(t1, vec2u(u1 + 3u, 0u)).x);
    acc = accumulateBlock(acc, RowValues(r0, r1, r2, vec4f()), Quads(c0, c1, vec4f(), vec4f(), vec4f(), vec4f(), vec4f(), vec4f()));
  }
  storeBlock(acc, (wid.x * 8u + lid) * 12u, 0u);
}
