/**
 * The size of a GPU "wave", in one place: how many workgroups fill a large GPU once.
 *
 * @module
 */

/**
 * Workgroups of >= 64 invocations that fill a large GPU once: 132 SMs x 4 resident workgroups (an H100 or
 * H200). The launch rule, the gpu family's split-K default and the tuner's split targets are multiples of it.
 */
export const WAVE_WORKGROUPS = 528;
