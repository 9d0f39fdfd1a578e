// Shared by the kernels that run one invocation per element (`//!include element_index.wgsl`): the workgroup
// size, and the element of an invocation when the runtime folds a large workgroup count into (x, y)
// (Gpu.dispatch: x = min(count, limit), y = ceil(count / limit)).
const WORKGROUP_SIZE = 64u;

fn element_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
}
