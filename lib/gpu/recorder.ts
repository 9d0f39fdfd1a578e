/**
 * Command recording: one command encoder collects dispatches, clears, copies and uploads until someone
 * needs a result, so a whole training step goes to the queue as one submit with no `await` between layers.
 *
 * @module
 */
const MAX_UNIFORM_CACHE = 4096;

/** Records commands on one device; `flush` submits them, `read` submits and maps a result. */
export class CommandRecorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #retired: GPUBuffer[] = [];
  #uniforms = new Map<string, GPUBuffer>();

  /** A recorder for `device`; `onReadFailure` turns a failed map into the device's own error. */
  constructor(readonly device: GPUDevice, readonly onReadFailure: (e: Error) => Promise<never>) {}

  /** The open compute pass, or a new one (with `timestampWrites`, always a new one). */
  pass(timestampWrites?: GPUComputePassTimestampWrites): GPUComputePassEncoder {
    if (timestampWrites) this.endPass();
    this.#pass ??= this.encoder().beginComputePass(timestampWrites ? { timestampWrites } : undefined);
    return this.#pass;
  }

  /** Ends the open compute pass, if any (copies and clears must sit outside passes). */
  endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** The open command encoder, or a new one. */
  encoder(): GPUCommandEncoder {
    this.#encoder ??= this.device.createCommandEncoder();
    return this.#encoder;
  }

  /** A uniform buffer holding `words`, cached by content (a training step reuses the same few hundred). */
  uniform(words: Uint32Array): GPUBuffer {
    const key = words.join(",");
    let buffer = this.#uniforms.get(key);
    if (!buffer) {
      if (this.#uniforms.size >= MAX_UNIFORM_CACHE) {
        this.#retired.push(...this.#uniforms.values());
        this.#uniforms.clear();
      }
      buffer = this.device.createBuffer({
        size: words.byteLength,
        usage: GPUBufferUsage.UNIFORM,
        mappedAtCreation: true,
      });
      new Uint32Array(buffer.getMappedRange()).set(words);
      buffer.unmap();
      this.#uniforms.set(key, buffer);
    }
    return buffer;
  }

  /** Records zero-filling of a buffer (all of it, or its first `bytes`, rounded up to 4). */
  clear(buffer: GPUBuffer, bytes?: number): void {
    this.endPass();
    this.encoder().clearBuffer(buffer, 0, bytes === undefined ? undefined : Math.ceil(bytes / 4) * 4);
  }

  /** Records a buffer-to-buffer copy (offsets in bytes, multiples of 4). */
  copy(source: GPUBuffer, target: GPUBuffer, bytes: number, sourceOffset = 0, targetOffset = 0): void {
    this.endPass();
    this.encoder().copyBufferToBuffer(source, sourceOffset, target, targetOffset, Math.ceil(bytes / 4) * 4);
  }

  /**
   * Records a write of host data: the bytes go into a mapped staging buffer whose copy is part of the same
   * command stream (a queue write would land before everything already recorded).
   */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    const size = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.copy(staging, buffer, size);
    this.retire(staging);
  }

  /** Destroys `buffer` after the next submit (it may still be used by recorded commands). */
  retire(buffer: GPUBuffer): void {
    this.#retired.push(buffer);
  }

  /** Submits everything recorded so far (does not wait for it). */
  flush(): void {
    this.endPass();
    if (this.#encoder) {
      this.device.queue.submit([this.#encoder.finish()]);
      this.#encoder = null;
    }
    for (const buffer of this.#retired) buffer.destroy();
    this.#retired = [];
  }

  /**
   * Copies the first `bytes` of each buffer back to the host after all recorded work, gathered into one
   * staging buffer and one map (each part's bytes a multiple of 4), and returns them concatenated.
   */
  async read(parts: readonly ReadPart[]): Promise<ArrayBuffer> {
    const size = parts.reduce((sum, part) => sum + part.bytes, 0);
    const staging = this.device.createBuffer({
      size: Math.max(4, size),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    let offset = 0;
    for (const part of parts) {
      if (part.bytes % 4 !== 0) throw new Error(`read of ${part.bytes} bytes: not a multiple of 4`);
      this.copy(part.buffer, staging, part.bytes, 0, offset);
      offset += part.bytes;
    }
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      return await this.onReadFailure(e as Error);
    }
    const out = staging.getMappedRange().slice(0, size);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Drops the open encoder without submitting it. */
  abandon(): void {
    this.endPass();
    this.#encoder = null;
  }
}

/** A buffer to read back, and how many of its first bytes. */
export interface ReadPart {
  /** The buffer (with `COPY_SRC` usage). */
  buffer: GPUBuffer;
  /** Bytes from its start, a multiple of 4. */
  bytes: number;
}

/** One dispatch, ready to encode: a pipeline, its bind group and the workgroup grid. */
export interface Dispatch {
  /** The kernel's pipeline. */
  pipeline: GPUComputePipeline;
  /** Its bindings. */
  bindGroup: GPUBindGroup;
  /** Workgroups in x. */
  x: number;
  /** Workgroups in y. */
  y: number;
}

/** Encodes `dispatch` in `pass`. */
export function encode(pass: GPUComputePassEncoder, dispatch: Dispatch): void {
  pass.setPipeline(dispatch.pipeline);
  pass.setBindGroup(0, dispatch.bindGroup);
  pass.dispatchWorkgroups(dispatch.x, dispatch.y);
}
