/**
 * Training checkpoints as safetensors bytes (files are written and read at the Deno edge,
 * lib/deno/checkpoint_file.ts): the model's parameters under PyTorch's names (so the file
 * loads into PyTorch directly), the optimizer's momentum buffers, and the run's state in the metadata.
 *
 * @module
 */
import { type EpochRecord, readHistory, readRunConfig, type RunConfig } from "./config.ts";
import { NinError } from "./errors.ts";
import type { EpochPosition } from "./fit.ts";
import type { Module } from "./module.ts";
import type { SGD } from "./optim.ts";
import { type HostTensor, parseSafetensors, serializeSafetensors } from "./safetensors.ts";
import type { Tensor } from "./tensor.ts";

/** Prefix of the optimizer's momentum buffers in a checkpoint (PyTorch keeps them apart from the model). */
const MOMENTUM_PREFIX = "optimizer.momentum_buffer.";
const FORMAT = "nin-webgpu-checkpoint/1";

/** Everything besides tensors that a run needs to continue exactly where it stopped. */
export interface RunState {
  /** Epochs completed. */
  epoch: number;
  /**
   * Where the run stood inside the next epoch, for a checkpoint written mid-epoch (absent or null: at the
   * end of epoch `epoch`).
   */
  position?: EpochPosition | null;
  /** Optimizer steps completed (also the dropout RNG counter). */
  step: number;
  /** The seed of shuffling, dropout and initialisation. */
  seed: number;
  /** The id of the run (a resumed run keeps it), as in its metrics lines. */
  runId?: string;
  /**
   * The run's configuration, for `eval` and a resumed run to rebuild from and check against (null: none,
   * e.g. a model-only file or a PyTorch state dict).
   */
  config: RunConfig | null;
  /** Per-epoch figures so far. */
  history: EpochRecord[];
  /** Output files the run writes besides the checkpoint, which a resumed run continues. */
  outputs?: { plot?: string; metrics?: string };
  /**
   * Points of the training curves so far, several per epoch (x in epochs, running means of loss and
   * accuracy), so a resumed run's plot continues the same curves.
   */
  curve?: CurvePoint[];
}

/** One point of the training curves: x in epochs (e.g. 1.2 is a fifth into the second epoch). */
export interface CurvePoint {
  /** Epochs done, fractional. */
  x: number;
  /** Running mean of the training loss over the epoch so far. */
  loss: number;
  /** Running training accuracy over the epoch so far. */
  trainAcc: number;
}

/** Options of {@link encodeCheckpoint}: what a trainer saves besides the model, to resume exactly. */
export interface SaveCheckpointOptions {
  /** The optimizer whose momentum buffers and step count are saved. */
  optimizer?: SGD;
  /** The run's state (defaults: epoch 0, step = the optimizer's step count, seed 0, no config or history). */
  state?: Partial<RunState>;
}

/**
 * Encodes `net`'s parameters (under PyTorch's names) as a safetensors file's bytes; with `optimizer` and
 * `state`, also what a trainer needs to resume. A parameter or momentum buffer holding NaN or infinity is
 * refused with a {@link NinError} naming `what` (the destination), so a diverged run never replaces the
 * last good checkpoint. The Deno edge's `saveCheckpoint` writes these bytes to a file.
 *
 * @example
 * ```ts
 * import { encodeCheckpoint, nin, requestGpu, SGD } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu);
 * const optimizer = new SGD(net.parameters(), { lr: 0.1 });
 * const bytes = await encodeCheckpoint(net, { optimizer, state: { epoch: 1, seed: 0 } });
 * console.log(bytes.length);
 * gpu.destroy();
 * ```
 */
export async function encodeCheckpoint(
  net: Module,
  options?: SaveCheckpointOptions,
  what = "the checkpoint",
): Promise<Uint8Array> {
  const optimizer = options?.optimizer;
  const state: RunState = {
    epoch: 0,
    step: optimizer?.stepCount ?? 0,
    seed: 0,
    config: null,
    history: [],
    ...options?.state,
  };
  const tensors = new Map<string, Tensor | HostTensor>(net.stateDict());
  const names = net.namedParameters().map(([name]) => name);
  optimizer?.state().forEach((buffer, i) => tensors.set(MOMENTUM_PREFIX + names[i], buffer));
  const host = new Map<string, HostTensor>();
  for (const [name, t] of tensors) {
    const data = "data" in t ? t.data : await t.toArray();
    if (!data.every(Number.isFinite)) {
      throw new NinError(
        `not saving ${what}: ${name} holds NaN or infinite values (training diverged; try a smaller ` +
          `learning rate); the file keeps its previous contents`,
      );
    }
    host.set(name, { dtype: "F32", shape: [...t.shape], data });
  }
  try {
    return serializeSafetensors(host, { format: FORMAT, state: JSON.stringify(state) });
  } catch (e) {
    throw new NinError(`${what}: ${(e as Error).message}`);
  }
}

/** A checkpoint: its tensors and run state. */
export interface Checkpoint {
  /** Model parameters by PyTorch name. */
  model: Map<string, HostTensor>;
  /** Momentum buffers by parameter name (empty when the run had no momentum or no step yet). */
  momentum: Map<string, HostTensor>;
  /** The run's state. */
  state: RunState;
}

/**
 * Parses a checkpoint's bytes as {@link encodeCheckpoint} writes them; a plain safetensors state dict (e.g.
 * from PyTorch) parses too, with an empty state. `what` names the source in errors.
 *
 * @example
 * ```ts
 * import { parseCheckpoint, serializeSafetensors } from "@nin/webgpu";
 * const bytes = serializeSafetensors(new Map([["b", { dtype: "F32", shape: [1], data: new Float32Array([3]) }]]));
 * const ckpt = parseCheckpoint(bytes, "demo.safetensors");
 * console.log(ckpt.state.epoch, ckpt.model.size); // 0 1
 * ```
 */
export function parseCheckpoint(bytes: Uint8Array, what: string): Checkpoint {
  const file = parseSafetensors(bytes, what);
  const model = new Map<string, HostTensor>();
  const momentum = new Map<string, HostTensor>();
  for (const [name, tensor] of file.tensors) {
    if (name.startsWith(MOMENTUM_PREFIX)) momentum.set(name.slice(MOMENTUM_PREFIX.length), tensor);
    else model.set(name, tensor);
  }
  let state: RunState = { epoch: 0, step: 0, seed: 0, config: null, history: [] };
  if (file.metadata.format === FORMAT) {
    let saved: Record<string, unknown>;
    try {
      saved = JSON.parse(file.metadata.state ?? "{}");
    } catch {
      throw new NinError(`${what}: the checkpoint's run state is not valid JSON`);
    }
    // Files written before RunConfig kept the plot and metrics paths among the flag-keyed configuration.
    // Only what the file holds is set, so a checkpoint read and written again is the same bytes.
    const legacy = (saved.config ?? {}) as Record<string, unknown>;
    const legacyOutputs = Object.fromEntries(
      (["plot", "metrics"] as const).filter((k) => typeof legacy[k] === "string").map((k) => [k, legacy[k]]),
    );
    const outputs = saved.outputs ?? (Object.keys(legacyOutputs).length > 0 ? legacyOutputs : undefined);
    state = {
      ...state,
      ...saved,
      config: readRunConfig(saved.config ?? {}, what),
      history: readHistory(saved.history ?? [], what),
      ...(outputs ? { outputs } : {}),
    };
  }
  return { model, momentum, state };
}

/**
 * Loads a checkpoint's parameters into `net` and, when given, its momentum buffers into `optimizer`.
 *
 * @example
 * ```ts
 * import { encodeCheckpoint, nin, parseCheckpoint, requestGpu, restoreCheckpoint } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu);
 * restoreCheckpoint(parseCheckpoint(await encodeCheckpoint(net), "demo"), net);
 * gpu.destroy();
 * ```
 */
export function restoreCheckpoint(checkpoint: Checkpoint, net: Module, optimizer?: SGD): void {
  net.loadStateDict(checkpoint.model);
  if (!optimizer) return;
  const names = net.namedParameters().map(([name]) => name);
  const buffers = checkpoint.momentum.size === 0 ? [] : names.map((name) => {
    const t = checkpoint.momentum.get(name);
    if (!t || !(t.data instanceof Float32Array)) {
      throw new NinError(`the checkpoint lacks the momentum buffer of ${name}`);
    }
    return t.data;
  });
  optimizer.loadState(buffers, checkpoint.state.step);
}
