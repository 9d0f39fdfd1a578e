/**
 * Training progress on stderr: a redrawn bar with ETA on a terminal, a plain line every tenth of an epoch
 * otherwise (logs stay readable).
 *
 * @module
 */
import type { StepProgress } from "../lib/fit.ts";

const encoder = new TextEncoder();

/** Renders {@link StepProgress} updates. */
export class Progress {
  #drawn = false;
  #secondsThisEpoch = 0;
  #epoch = 0;

  /** `terminal` selects the redrawn bar (true) or plain lines (false). */
  constructor(readonly terminal: boolean) {}

  /** Shows one step's progress. */
  update(p: StepProgress): void {
    if (p.epoch !== this.#epoch) {
      this.#epoch = p.epoch;
      this.#secondsThisEpoch = 0;
    }
    this.#secondsThisEpoch += p.seconds;
    const eta = (this.#secondsThisEpoch / p.batch) * (p.batches - p.batch);
    const text = `epoch ${p.epoch} ${p.batch}/${p.batches} loss ${p.loss.toFixed(3)} ETA ${
      Math.round(eta)
    } s`;
    if (this.terminal) {
      const width = 24;
      const done = Math.round((width * p.batch) / p.batches);
      const bar = "#".repeat(done) + ".".repeat(width - done);
      Deno.stderr.writeSync(encoder.encode(`\r[${bar}] ${text}\x1b[K`));
      this.#drawn = true;
    } else if (p.batch === p.batches || p.batch % Math.max(1, Math.round(p.batches / 10)) === 0) {
      console.error(text);
    }
  }

  /** Erases the bar so the next line starts clean. */
  clear(): void {
    if (this.terminal && this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#drawn = false;
  }
}
