/**
 * Progress on stderr for long runs: on a terminal a redrawn bar whose ETA covers the whole run (every
 * remaining training step and test evaluation), otherwise a plain line at least every 30 seconds. Notes go
 * on their own lines, never glued to the bar.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Seconds as `1h 02m`, `3m 05s` or `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** What a run has left to do, in units of work: training steps and test (or eval) batches. */
export interface ProgressPlan {
  /** Training steps left in the whole run. */
  trainSteps: number;
  /** Evaluation batches left in the whole run. */
  testBatches: number;
}

/** How long one evaluation batch is taken to last relative to a training step, until one has been timed. */
const TEST_COST_GUESS = 0.35;

/** Renders progress: call {@link Progress.trainStep} and {@link Progress.testBatch} as work gets done. */
export class Progress {
  #drawn = false;
  #lastLine = "";
  #lastPrinted = 0;
  #trainLeft: number;
  #testLeft: number;
  #trainSeconds = 0;
  #trainTimed = 0;
  #testSeconds = 0;
  #testTimed = 0;
  #firstTrain = true;
  #firstTest = true;

  /**
   * `terminal` selects the redrawn bar (true) or plain lines at most `interval` seconds apart (false).
   *
   * @example
   * ```ts
   * import { Progress } from "./progress.ts";
   * const progress = new Progress(false, { trainSteps: 2, testBatches: 0 });
   * progress.trainStep("epoch 1 1/2 loss 2.303", 1.5);
   * progress.note("note: printed on its own line");
   * progress.clear();
   * ```
   */
  constructor(readonly terminal: boolean, plan: ProgressPlan, readonly interval = 30) {
    this.#trainLeft = plan.trainSteps;
    this.#testLeft = plan.testBatches;
  }

  /**
   * Seconds the rest of the run should take, from the steps timed so far; NaN until a step after the first
   * has been timed: the first step (or evaluation batch) compiles the kernels, which would inflate the
   * estimate many times over.
   */
  get eta(): number {
    const step = this.secondsPerStep;
    const test = this.#testTimed ? this.#testSeconds / this.#testTimed : step * TEST_COST_GUESS;
    return (this.#trainLeft > 0 ? this.#trainLeft * step : 0) +
      (this.#testLeft > 0 ? this.#testLeft * test : 0);
  }

  /** Seconds of training steps timed so far (the compiling first step left out). */
  get timedTrainSeconds(): number {
    return this.#trainSeconds;
  }

  /** Seconds per training step so far, the compiling first step left out (NaN until a second one). */
  get secondsPerStep(): number {
    return this.#trainTimed ? this.#trainSeconds / this.#trainTimed : NaN;
  }

  /**
   * One training step done in `seconds`; `label` says where the run is (e.g. `epoch 1 3/16 loss 2.301`),
   * `fraction` how much of the bar to fill; without a terminal a `milestone` step (e.g. the first of an
   * epoch) is printed even when the last line is less than `interval` seconds old.
   */
  trainStep(label: string, seconds: number, fraction?: number, milestone = false): void {
    this.#trainLeft = Math.max(0, this.#trainLeft - 1);
    if (this.#firstTrain) this.#firstTrain = false;
    else this.#time("train", seconds);
    this.#show(label, fraction, milestone);
  }

  /** One evaluation batch done in `seconds` (arguments as for {@link Progress.trainStep}). */
  testBatch(label: string, seconds: number, fraction?: number, milestone = false): void {
    this.#testLeft = Math.max(0, this.#testLeft - 1);
    if (this.#firstTest) this.#firstTest = false;
    else this.#time("test", seconds);
    this.#show(label, fraction, milestone);
  }

  /** Prints `line` on its own line (the bar is cleared first and redrawn after). */
  note(line: string): void {
    const redraw = this.#drawn;
    this.clear();
    console.error(line);
    if (redraw) this.#draw();
  }

  /** Erases the bar so the next line starts clean. */
  clear(): void {
    if (this.terminal && this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#drawn = false;
  }

  #time(kind: "train" | "test", seconds: number): void {
    if (kind === "train") {
      this.#trainSeconds += seconds;
      this.#trainTimed += 1;
    } else {
      this.#testSeconds += seconds;
      this.#testTimed += 1;
    }
  }

  #show(label: string, fraction?: number, milestone = false): void {
    const eta = this.eta;
    const text = `${label}, ETA ${
      Number.isFinite(eta) ? formatDuration(eta) : "after the next step (the first compiles the kernels)"
    }`;
    if (this.terminal) {
      const width = 24;
      const done = Math.round(width * Math.min(1, Math.max(0, fraction ?? 0)));
      this.#lastLine = `[${"#".repeat(done)}${".".repeat(width - done)}] ${text}`;
      this.#draw();
    } else {
      const now = performance.now() / 1000;
      if (milestone || this.#lastPrinted === 0 || now - this.#lastPrinted >= this.interval) {
        console.error(text);
        this.#lastPrinted = now;
      }
    }
  }

  #draw(): void {
    if (!this.#lastLine) return;
    Deno.stderr.writeSync(encoder.encode(`\r${this.#lastLine}\x1b[K`));
    this.#drawn = true;
  }
}
