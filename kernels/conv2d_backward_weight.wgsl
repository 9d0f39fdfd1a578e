// Conv2d weight gradient as a GEMM reduction over batch and space, accumulated into dw (micro-batching):
//   dw[o, c, kh, kw] += sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// (taps in the padding contribute nothing). g is dy, or with fuseRelu dy masked by (saved output > 0).
//
// Thread mapping (for llvmpipe, where the 8 invocations of a workgroup are one thread's SIMD lanes):
// - the weight tensor is seen as a matrix [outChannels, inChannels*k*k]; a "column" e = (c*k + kh)*k + kw
//   is one (input channel, tap) pair, exactly the OIHW order inside a row;
// - a workgroup owns 16 output channels x 64 columns; invocation `lid` owns 8 columns (two quads) for the 16
//   channels (four quads): eight mat4x4 accumulators, acc[j][t][col][row] = channel 4t + col, column 4j + row;
// - every invocation loops over all n, oh, ow itself (deterministic: no atomics, no partial sums). The 16
//   output channels are workgroup-uniform, so dy (and saved-output) loads are uniform; input loads and
//   padding checks differ per lane.
struct Params {
  n: u32,
  inChannels: u32,
  height: u32,
  width: u32,
  outChannels: u32,
  outHeight: u32,
  outWidth: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
}

override fuseRelu: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// The forward's output (post-ReLU) when fuseRelu; otherwise bound to dy and never read.
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;

const COLUMNS_PER_WORKGROUP = 64u;
const CHANNELS_PER_WORKGROUP = 16u;
const QUAD = vec4u(0u, 1u, 2u, 3u);

// acc + a * b^T: column i gains a * b[i].
fn outer(acc: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(fma(a, vec4f(b.x), acc[0]), fma(a, vec4f(b.y), acc[1]), fma(a, vec4f(b.z), acc[2]),
                 fma(a, vec4f(b.w), acc[3]));
}

// Output gradients of four channels (offsets `channels`) at one output position `at`; masked with fuseRelu.
fn grads(channels: vec4u, at: u32) -> vec4f {
  let o = channels + vec4u(at);
  let g = vec4f(dy[o.x], dy[o.y], dy[o.z], dy[o.w]);
  if (fuseRelu) {
    let out = vec4f(saved[o.x], saved[o.y], saved[o.z], saved[o.w]);
    return select(vec4f(0.0), g, out > vec4f(0.0));
  }
  return g;
}

// Four columns of the weight matrix: offset of (c, kh - p, kw - p) inside an image, and kh - p, kw - p.
struct Columns {
  offset: vec4i,
  row: vec4i,
  col: vec4i,
}

fn columns(e: u32) -> Columns {
  let kk = p.kernel * p.kernel;
  let col = min(vec4u(e) + QUAD, vec4u(p.inChannels * kk - 1u));
  let row = vec4i((col % kk) / p.kernel) - i32(p.padding);
  let left = vec4i(col % p.kernel) - i32(p.padding);
  return Columns(vec4i((col / kk) * p.height * p.width) + row * i32(p.width) + left, row, left);
}

// Four input values for output position (oh, ow) of image base `image`, zero in the padding.
fn inputs(cols: Columns, image: u32, ih0: i32, iw0: i32) -> vec4f {
  let ih = cols.row + ih0;
  let iw = cols.col + iw0;
  // Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
  let inside = (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width));
  let at = select(vec4u(0u), vec4u(cols.offset + ih0 * i32(p.width) + iw0) + image, inside);
  return select(vec4f(0.0), vec4f(x[at.x], x[at.y], x[at.z], x[at.w]), inside);
}

// Adds a 4 x 4 accumulator (channels o.., columns e..) into dw.
fn store(acc: mat4x4f, o: u32, e: u32) {
  let columnCount = p.inChannels * p.kernel * p.kernel;
  for (var col = 0u; col < 4u; col++) {
    if (o + col >= p.outChannels) {
      return;
    }
    for (var row = 0u; row < 4u; row++) {
      if (e + row < columnCount) {
        let i = (o + col) * columnCount + e + row;
        dw[i] += acc[col][row];
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let columnBlocks = (p.inChannels * p.kernel * p.kernel + COLUMNS_PER_WORKGROUP - 1u) / COLUMNS_PER_WORKGROUP;
  let e0 = (wg % columnBlocks) * COLUMNS_PER_WORKGROUP + lid * 8u;
  let o0 = (wg / columnBlocks) * CHANNELS_PER_WORKGROUP;
  let ohw = p.outHeight * p.outWidth;
  let chw = p.inChannels * p.height * p.width;
  let cols0 = columns(e0);
  let cols1 = columns(e0 + 4u);
  // dy offsets of the 16 channels (clamped: channels past the last one compute unused values).
  let lastChannel = vec4u(p.outChannels - 1u);
  let ch0 = min(vec4u(o0) + QUAD, lastChannel) * ohw;
  let ch1 = min(vec4u(o0 + 4u) + QUAD, lastChannel) * ohw;
  let ch2 = min(vec4u(o0 + 8u) + QUAD, lastChannel) * ohw;
  let ch3 = min(vec4u(o0 + 12u) + QUAD, lastChannel) * ohw;
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc02 = mat4x4f();
  var acc03 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  var acc12 = mat4x4f();
  var acc13 = mat4x4f();
  for (var n = 0u; n < p.n; n++) {
    let image = n * chw;
    for (var oh = 0u; oh < p.outHeight; oh++) {
      let ih0 = i32(oh * p.stride);
      var at = (n * p.outChannels * p.outHeight + oh) * p.outWidth;
      for (var ow = 0u; ow < p.outWidth; ow++) {
        let iw0 = i32(ow * p.stride);
        let x0 = inputs(cols0, image, ih0, iw0);
        let x1 = inputs(cols1, image, ih0, iw0);
        let d0 = grads(ch0, at);
        let d1 = grads(ch1, at);
        let d2 = grads(ch2, at);
        let d3 = grads(ch3, at);
        acc00 = outer(acc00, x0, d0);
        acc01 = outer(acc01, x0, d1);
        acc02 = outer(acc02, x0, d2);
        acc03 = outer(acc03, x0, d3);
        acc10 = outer(acc10, x1, d0);
        acc11 = outer(acc11, x1, d1);
        acc12 = outer(acc12, x1, d2);
        acc13 = outer(acc13, x1, d3);
        at += 1u;
      }
    }
  }
  store(acc00, o0, e0);
  store(acc01, o0 + 4u, e0);
  store(acc02, o0 + 8u, e0);
  store(acc03, o0 + 12u, e0);
  store(acc10, o0, e0 + 4u);
  store(acc11, o0 + 4u, e0 + 4u);
  store(acc12, o0 + 8u, e0 + 4u);
  store(acc13, o0 + 12u, e0 + 4u);
}
