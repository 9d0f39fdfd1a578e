/**
 * Command recording: one command encoder collects dispatches, clears, copies and uploads until someone
 * needs a result, so a whole training step goes to the queue as one submit with no `await` between layers.
 *
 * @module
 */
// A training step of NiN uses 56 distinct uniforms (software kernels; an evaluation batch and the gpu family a
// few dozen more), and dropout adds a new one each step (its step counter). 512 holds that working set with
// room to spare and fills by about step 460; from then on the least recently used one is rewritten in place,
// so no new buffers or bind groups: a long run's memory is flat. (4,096 filled only near step 4,000 and added
// ~18 MiB of RSS on the way.)
const MAX_UNIFORM_CACHE = 512;

/** Records commands on one device; `flush` submits them, `read` submits and maps a result. */
export class CommandRecorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #retired: GPUBuffer[] = [];
  #uniforms = new Map<string, GPUBuffer>();
  // Buffers are reused, not made and destroyed per step: in Deno's WebGPU every buffer created and destroyed
  // left about 1 KiB of native memory behind (measured), and a step uploads twice and makes a few uniforms.
  #spareUniforms = new Map<number, GPUBuffer[]>();
  #usedSinceFlush = new Set<GPUBuffer>();
  #uploads = new Map<number, GPUBuffer[]>();
  #uploadsInFlight: GPUBuffer[] = [];

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

  /**
   * A uniform buffer holding `words`, cached by content (a training step reuses the same few hundred; only
   * dropout's step counter is new each step). When full, the least recently used one takes the new value
   * (a queue write, ordered after the commands already submitted that read the old one), so a long run makes
   * no new buffers.
   */
  uniform(words: Uint32Array): GPUBuffer {
    const key = words.join(",");
    let buffer = this.#uniforms.get(key);
    if (buffer) {
      // A Map iterates in insertion order: re-inserting keeps the oldest-used first.
      this.#uniforms.delete(key);
      this.#uniforms.set(key, buffer);
    } else {
      if (this.#uniforms.size >= MAX_UNIFORM_CACHE) {
        const [oldest, evicted] = this.#uniforms.entries().next().value!;
        this.#uniforms.delete(oldest);
        // One bound by commands not yet submitted must keep its value until they run.
        if (this.#usedSinceFlush.has(evicted)) this.#retired.push(evicted);
        else spare(this.#spareUniforms, evicted);
      }
      buffer = this.#spareUniforms.get(words.byteLength)?.pop();
      if (buffer) {
        this.device.queue.writeBuffer(buffer, 0, words as Uint32Array<ArrayBuffer>);
      } else {
        buffer = this.device.createBuffer({
          size: words.byteLength,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
          mappedAtCreation: true,
        });
        new Uint32Array(buffer.getMappedRange()).set(words);
        buffer.unmap();
      }
      this.#uniforms.set(key, buffer);
    }
    this.#usedSinceFlush.add(buffer);
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
   * Records a write of host data: the bytes go into an upload buffer (by a queue write, which lands before
   * this stream is submitted) whose copy to `buffer` is part of the same command stream, so the write is
   * ordered with everything recorded around it. An upload buffer is reused once the copy was submitted.
   */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size === 0) return;
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length !== size) {
      const padded = new Uint8Array(size);
      padded.set(bytes);
      bytes = padded;
    }
    const upload = this.#uploads.get(size)?.pop() ??
      this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(upload, 0, bytes as Uint8Array<ArrayBuffer>);
    this.copy(upload, buffer, size);
    this.#uploadsInFlight.push(upload);
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
    for (const upload of this.#uploadsInFlight) spare(this.#uploads, upload);
    this.#uploadsInFlight = [];
    this.#usedSinceFlush.clear();
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
    for (const upload of this.#uploadsInFlight) spare(this.#uploads, upload);
    this.#uploadsInFlight = [];
    this.#usedSinceFlush.clear();
  }
}

/** Puts `buffer` on the list of spare buffers of its size. */
function spare(lists: Map<number, GPUBuffer[]>, buffer: GPUBuffer): void {
  const list = lists.get(buffer.size);
  if (list) list.push(buffer);
  else lists.set(buffer.size, [buffer]);
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
