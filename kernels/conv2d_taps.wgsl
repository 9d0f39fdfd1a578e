// Shared by conv2d_forward.wgsl and conv2d_backward_input.wgsl (`//!include conv2d_taps.wgsl`, with
// conv2d_common.wgsl): the GEMMs whose 32 columns are spatial positions that read a streamed operand (x in
// the forward, the output gradient g in the input gradient) through one kernel tap at a time, channel after
// channel, while each invocation reads its own weights from the OIHW tensor `w`. The including kernel binds
// `w` and defines:
//   struct Quad                                  four positions, decoded once
//   fn quad(q: u32) -> Quad                      positions q..q+3
//   fn tap(positions: Quad, kh: u32, kw: u32) -> Tap   their offsets at tap (kh, kw) in the first channel
//   fn streamed(i: u32) -> f32                   element i of the streamed operand

// A quad's offsets into the streamed operand at one tap; `valid` is false where the tap reads nothing there
// (padding, or no output position), and those lanes read 0.
struct Tap {
  offset: vec4u,
  valid: vec4<bool>,
}

// The block's 8 quads of positions, and their taps.
struct Positions {
  q0: Quad, q1: Quad, q2: Quad, q3: Quad, q4: Quad, q5: Quad, q6: Quad, q7: Quad,
}

struct Taps {
  t0: Tap, t1: Tap, t2: Tap, t3: Tap, t4: Tap, t5: Tap, t6: Tap, t7: Tap,
}

fn positions(q: u32) -> Positions {
  return Positions(quad(q), quad(q + 4u), quad(q + 8u), quad(q + 12u), quad(q + 16u), quad(q + 20u),
                   quad(q + 24u), quad(q + 28u));
}

fn tapsAt(b: Positions, kh: u32, kw: u32) -> Taps {
  return Taps(tap(b.q0, kh, kw), tap(b.q1, kh, kw), tap(b.q2, kh, kw), tap(b.q3, kh, kw), tap(b.q4, kh, kw),
              tap(b.q5, kh, kw), tap(b.q6, kh, kw), tap(b.q7, kh, kw));
}

fn anyValid(t: Taps) -> bool {
  return any(t.t0.valid | t.t1.valid | t.t2.valid | t.t3.valid | t.t4.valid | t.t5.valid | t.t6.valid |
             t.t7.valid);
}

fn gather(t: Tap) -> vec4f {
  let values = vec4f(streamed(t.offset.x), streamed(t.offset.y), streamed(t.offset.z), streamed(t.offset.w));
  return select(vec4f(0.0), values, t.valid);
}

// The streamed values of the block's 32 positions in one channel.
fn columnValues(t: Taps) -> Quads {
  return Quads(gather(t.t0), gather(t.t1), gather(t.t2), gather(t.t3), gather(t.t4), gather(t.t5),
               gather(t.t6), gather(t.t7));
}

// The same taps one channel further on, `plane` elements later.
fn nextChannel(t: Taps, plane: u32) -> Taps {
  let d = vec4u(plane);
  return Taps(Tap(t.t0.offset + d, t.t0.valid), Tap(t.t1.offset + d, t.t1.valid),
              Tap(t.t2.offset + d, t.t2.valid), Tap(t.t3.offset + d, t.t3.valid),
              Tap(t.t4.offset + d, t.t4.valid), Tap(t.t5.offset + d, t.t5.valid),
              Tap(t.t6.offset + d, t.t6.valid), Tap(t.t7.offset + d, t.t7.valid));
}

// Offsets in w of the invocation's weight rows first.. (four quads, clamped to `count`), `scale` apart.
struct WeightOffsets {
  q0: vec4u, q1: vec4u, q2: vec4u, q3: vec4u,
}

fn weightOffsets(first: u32, count: u32, scale: u32) -> WeightOffsets {
  return WeightOffsets(clampedQuad(first, count) * scale, clampedQuad(first + 4u, count) * scale,
                       clampedQuad(first + 8u, count) * scale, clampedQuad(first + 12u, count) * scale);
}

fn weightQuad(at: vec4u) -> vec4f {
  return vec4f(w[at.x], w[at.y], w[at.z], w[at.w]);
}

// The invocation's weights `k` elements past its row offsets.
fn weights(rows: WeightOffsets, k: u32) -> RowValues {
  let d = vec4u(k);
  return RowValues(weightQuad(rows.q0 + d), weightQuad(rows.q1 + d), weightQuad(rows.q2 + d),
                   weightQuad(rows.q3 + d));
}
