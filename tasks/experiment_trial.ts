/**
 * Running one experiment trial in its own directory (`<out>/<experiment>/<trial id>/`): an atomic claim file
 * so two processes (on one machine or many sharing the directory) never run it at once, a checkpoint after
 * every epoch that a rerun resumes, JSON-lines metrics, and `result.json` when it is done (a finished trial
 * is skipped).
 *
 * @module
 */
import { type CurvePoint, restoreCheckpoint } from "../lib/checkpoint.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { configDifferences, type EpochRecord, ninOptions } from "../lib/config.ts";
import { NinError } from "../lib/errors.ts";
import type { Trial } from "../lib/experiment.ts";
import type { TrialResult } from "../lib/experiment_report.ts";
import { fit } from "../lib/fit.ts";
import { headFeatureStats } from "../lib/head_features.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { countingLimits } from "../lib/gpu/counting.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { runFitOptions, runSchedule, runSplits, validationAccuracy } from "../lib/run.ts";
import { writeFileAtomic } from "../lib/deno/atomic_write.ts";
import type { FashionMnist } from "../lib/data/split.ts";

/** A claim untouched for this long is taken to belong to a process that died (on any machine). */
const STALE_CLAIM_SECONDS = 600;
/** How often a running trial touches its claim, at most. */
const HEARTBEAT_SECONDS = 30;
/** Test images whose last-block features a finished trial measures (exercise 4's dead channels and rank). */
const FEATURE_IMAGES = 256;
/** Points of the training curve per epoch. */
const POINTS_PER_EPOCH = 5;

/** How a call to {@link runTrial} ended. */
export type TrialOutcome = "finished" | "skipped" | "busy" | "stopped";

/** What {@link runTrial} needs besides the trial. */
export interface TrialContext {
  /** The process's one device (kernels compile once for all its trials). */
  gpu: Gpu;
  /** Fashion-MNIST, loaded once. */
  data: FashionMnist;
  /** Largest micro-batch, if limited. */
  microBatch?: number;
  /** Polled between steps: true stops the trial after the current step, keeping its last checkpoint. */
  shouldStop: () => boolean;
  /** A line of progress for the user. */
  log: (line: string) => void;
}

const exists = async (path: string) => {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
};

/** This machine's boot id (Linux), so a claim left by a dead process on this machine is seen as stale at once. */
async function bootId(): Promise<string | null> {
  try {
    return (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim();
  } catch {
    return null;
  }
}

/** A held claim: touch it now and then, release it when done. */
interface Claim {
  heartbeat(): Promise<void>;
  release(): Promise<void>;
}

/**
 * Claims `dir` for this process: creates `dir/claim` with O_EXCL (only one creator can win, also over NFS
 * v3+ and local file systems). A claim whose owner is gone (same machine and its PID no longer runs, or no
 * heartbeat for {@link STALE_CLAIM_SECONDS}) is moved aside and taken over. Null when another live process
 * holds it.
 */
export async function claimTrial(dir: string): Promise<Claim | null> {
  const path = `${dir}/claim`;
  const token = crypto.randomUUID();
  const boot = await bootId();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await Deno.open(path, { createNew: true, write: true });
      await file.write(new TextEncoder().encode(
        JSON.stringify({ token, pid: Deno.pid, boot, started: new Date().toISOString() }) + "\n",
      ));
      file.close();
      let last = Date.now();
      return {
        heartbeat: async () => {
          if (Date.now() - last < HEARTBEAT_SECONDS * 1000) return;
          last = Date.now();
          await Deno.utime(path, new Date(), new Date());
        },
        release: async () => {
          try {
            const held = JSON.parse(await Deno.readTextFile(path));
            if (held.token === token) await Deno.remove(path);
          } catch (e) {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          }
        },
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    if (!(await isStale(path, boot))) return null;
    // Moved aside under a unique name: of two processes taking over the same stale claim, one rename wins.
    try {
      await Deno.rename(path, `${path}.stale-${token}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
  }
  return null;
}

async function isStale(path: string, boot: string | null): Promise<boolean> {
  let held: { pid?: number; boot?: string | null };
  let modified: Date | null;
  try {
    held = JSON.parse(await Deno.readTextFile(path));
    modified = (await Deno.stat(path)).mtime;
  } catch (e) {
    // Gone meanwhile, or half-written by a process that is still writing it: not stale.
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return false;
    throw e;
  }
  if (boot !== null && held.boot === boot && typeof held.pid === "number") {
    return !(await exists(`/proc/${held.pid}`));
  }
  return modified !== null && Date.now() - modified.getTime() > STALE_CLAIM_SECONDS * 1000;
}

/** The result of a finished trial in `dir`, or null. */
export async function readTrialResult(dir: string): Promise<TrialResult | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/result.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new NinError(`${dir}/result.json is not valid JSON; delete it to run the trial again`);
  }
}

/**
 * Runs `trial` in `dir` unless it is finished (skipped) or another process holds it (busy); resumes from the
 * trial's checkpoint after its last complete epoch. Stopped by `ctx.shouldStop`, it keeps that checkpoint and
 * releases its claim, so a rerun continues.
 */
export async function runTrial(trial: Trial, dir: string, ctx: TrialContext): Promise<TrialOutcome> {
  if (await exists(`${dir}/result.json`)) return "skipped";
  await Deno.mkdir(dir, { recursive: true });
  const claim = await claimTrial(dir);
  if (!claim) return "busy";
  try {
    return await train(trial, dir, ctx, claim);
  } finally {
    await claim.release();
  }
}

async function train(trial: Trial, dir: string, ctx: TrialContext, claim: Claim): Promise<TrialOutcome> {
  const { gpu, log } = ctx;
  const config = trial.config;
  const hyper = config.train;
  const checkpointPath = `${dir}/checkpoint.safetensors`;
  const metricsPath = `${dir}/metrics.jsonl`;
  const started = performance.now();
  const splits = runSplits(config, ctx.data);
  const { data, trainCount } = splits;
  const net = nin(gpu, ninOptions(config));
  const optimizer = new SGD(net.parameters(), {
    lr: hyper.lr,
    momentum: hyper.momentum,
    weightDecay: hyper.weightDecay,
    schedule: runSchedule(config, splits.steps),
  });
  try {
    const history: EpochRecord[] = [];
    const curve: CurvePoint[] = [];
    let startEpoch = 0;
    let secondsBefore = 0;
    if (await exists(checkpointPath)) {
      const saved = await loadCheckpoint(checkpointPath);
      const differences = saved.state.config ? configDifferences(saved.state.config, config) : [];
      if (!saved.state.config || differences.length > 0) {
        throw new NinError(
          `${checkpointPath} was trained with another configuration (${
            differences.map((d) => d.path).join(", ") || "none saved"
          }); delete ${dir} to run the trial anew`,
        );
      }
      restoreCheckpoint(saved, net, optimizer);
      startEpoch = saved.state.epoch;
      history.push(...saved.state.history);
      curve.push(...(saved.state.curve ?? []));
      secondsBefore = history[history.length - 1]?.elapsedSeconds ?? 0;
      log(`${trial.id}: resuming after epoch ${startEpoch} (step ${saved.state.step})`);
    }
    // The metrics file holds exactly the epochs the checkpoint has (an interrupted epoch's lines go).
    const kept = (await exists(metricsPath) ? await Deno.readTextFile(metricsPath) : "").split("\n")
      .filter((line) => line !== "" && JSON.parse(line).epoch <= startEpoch);
    await writeFileAtomic(metricsPath, new TextEncoder().encode(kept.map((l) => l + "\n").join("")));
    const append = (record: Record<string, unknown>) =>
      Deno.writeTextFile(metricsPath, JSON.stringify({ trial: trial.id, ...record }) + "\n", {
        append: true,
      });
    const every = Math.max(1, Math.floor(splits.steps / POINTS_PER_EPOCH));
    const examplesSeen = (x: number) => Math.round(x * trainCount);
    const elapsed = () => secondsBefore + (performance.now() - started) / 1000;
    let pending: Promise<void> = Promise.resolve();
    await fit(net, optimizer, data, {
      ...runFitOptions(config, splits, ctx.microBatch),
      startEpoch,
      shouldStop: ctx.shouldStop,
      onStep: (p) => {
        if (p.batch % every !== 0 && p.batch !== p.batches) return;
        const x = p.epoch - 1 + p.batch / p.batches;
        curve.push({ x, loss: p.epochLoss, trainAcc: p.epochAcc });
        const line = {
          kind: "step",
          epoch: p.epoch,
          batch: p.batch,
          examples: examplesSeen(x),
          loss: p.epochLoss,
        };
        pending = pending.then(() => append(line)).then(() => claim.heartbeat());
        if (p.batch === p.batches || p.batch % Math.max(1, Math.round(p.batches / 4)) === 0) {
          log(
            `${trial.id}: epoch ${p.epoch}/${hyper.epochs} step ${p.batch}/${p.batches} loss ${
              p.epochLoss.toFixed(3)
            }`,
          );
        }
      },
      onTestBatch: () => {
        pending = pending.then(() => claim.heartbeat());
      },
      onEpoch: async (m) => {
        await pending;
        const record: EpochRecord = { ...m, lr: optimizer.lr };
        record.validAcc = await validationAccuracy(net, config, splits, { microBatch: ctx.microBatch });
        record.elapsedSeconds = elapsed();
        history.push(record);
        await saveCheckpoint(net, checkpointPath, {
          optimizer,
          state: { epoch: m.epoch, step: optimizer.stepCount, seed: config.seed, config, history, curve },
        });
        await append({ kind: "epoch", seed: config.seed, config, ...record });
        log(
          `${trial.id}: epoch ${m.epoch}/${hyper.epochs} loss ${m.loss.toFixed(3)}${
            record.validAcc === undefined ? "" : `, valid acc ${record.validAcc.toFixed(3)}`
          }, test acc ${m.testAcc.toFixed(3)}, ${m.examplesPerSec.toFixed(1)} examples/s`,
        );
      },
    });
    await pending;
    if (history.length < hyper.epochs) return "stopped";
    const headFeatures = await headFeatureStats(net, data.test, {
      count: Math.min(FEATURE_IMAGES, splits.testCount),
      batchSize: hyper.batchSize,
      resize: config.data.resize,
    });
    const result: TrialResult = {
      trial: trial.id,
      variant: trial.variant.id,
      seed: trial.seed,
      config,
      history,
      curve: curve.map((p) => ({ examples: examplesSeen(p.x), loss: p.loss })),
      seconds: elapsed(),
      device: gpu.describe(),
      kernels: gpu.kernels,
      limits: countingLimits(gpu.limits),
      headFeatures,
    };
    await writeFileAtomic(
      `${dir}/result.json`,
      new TextEncoder().encode(JSON.stringify(result, null, 1) + "\n"),
    );
    return "finished";
  } finally {
    optimizer.dispose();
    net.dispose();
  }
}
