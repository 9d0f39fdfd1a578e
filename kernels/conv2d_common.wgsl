// Shared by the three conv2d GEMM kernels: included (`//!include conv2d_common.wgsl`) by conv2d_forward.wgsl,
// conv2d_backward_input.wgsl and conv2d_backward_weight.wgsl. Their common Params layout and the
// register-blocked accumulator: a Row is four matrix rows x 32 matrix columns as eight mat4x4 quads, and
// accumulate adds the outer product of four row values with 32 column values (8 quads) to it.
struct Params {
  n: u32,
  in_channels: u32,
  height: u32,
  width: u32,
  out_channels: u32,
  out_height: u32,
  out_width: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
}

const QUAD = vec4u(0u, 1u, 2u, 3u);

// acc + a * b^T: column i gains a * b[i].
fn outer(acc: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(fma(a, vec4f(b.x), acc[0]), fma(a, vec4f(b.y), acc[1]), fma(a, vec4f(b.z), acc[2]),
                 fma(a, vec4f(b.w), acc[3]));
}

struct Row {
  q0: mat4x4f, q1: mat4x4f, q2: mat4x4f, q3: mat4x4f, q4: mat4x4f, q5: mat4x4f, q6: mat4x4f, q7: mat4x4f,
}

// 32 values as 8 quads, one per matrix column of a Row.
struct Quads {
  q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f, q4: vec4f, q5: vec4f, q6: vec4f, q7: vec4f,
}

fn accumulate(r: Row, a: vec4f, b: Quads) -> Row {
  return Row(outer(r.q0, a, b.q0), outer(r.q1, a, b.q1), outer(r.q2, a, b.q2), outer(r.q3, a, b.q3),
             outer(r.q4, a, b.q4), outer(r.q5, a, b.q5), outer(r.q6, a, b.q6), outer(r.q7, a, b.q7));
}
