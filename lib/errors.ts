/**
 * The one error type the toolkit throws for a user's mistake or a GPU fault: its message is a single line
 * that says what is wrong and, where possible, what to do. Tasks print it without a stack trace.
 *
 * @example
 * ```ts
 * import { NinError } from "@nin/webgpu";
 * try {
 *   throw new NinError("--lr must be a positive number, got -1");
 * } catch (e) {
 *   if (e instanceof NinError) console.error(`error: ${e.message}`);
 * }
 * ```
 */
export class NinError extends Error {
  /** Exit code a task should end with: 2 for bad flags (usage), 1 for everything else. */
  readonly exitCode: number;

  /** Makes an error with a one-line message and the exit code a task should use (default 1). */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "NinError";
    this.exitCode = exitCode;
  }
}

/** Formats a shape as PyTorch prints it in lists, e.g. `[1, 96, 54, 54]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
