/**
 * Measures what {@link analyzeResources} predicts: one real prediction pass and one real training step of
 * NiN on the GPU, with the peak live bytes from the toolkit's own accounting (`gpu.memory`) and the FLOPs
 * the dispatched kernels declared (`gpu.flopsDispatched`).
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { microBatchSize } from "./microbatch.ts";
import { nin } from "./nin.ts";
import { SGD } from "./optim.ts";
import { predictClasses } from "./predict.ts";
import { Random } from "./random.ts";
import { analyzeResources, type ResourceOptions, type Resources } from "./resources.ts";
import { Tensor } from "./tensor.ts";
import { trainStep } from "./train.ts";

/** One measured pass next to its prediction. */
export interface PassMeasurement {
  /** Predicted peak live bytes. */
  predictedBytes: number;
  /** Measured peak live bytes (`gpu.memory.peakBytes` minus the live bytes before the model existed). */
  measuredBytes: number;
  /** `(measured - predicted) / predicted`. */
  relativeDifference: number;
  /** FLOPs the analytic count gives for the pass. */
  predictedFlops: number;
  /** FLOPs the dispatched kernels declared (`gpu.flopsDispatched` difference). */
  dispatchedFlops: number;
  /** Micro-batch size the pass ran with. */
  microBatch: number;
  /** Wall-clock seconds of the pass, GPU work included (the first pass also compiles the shaders). */
  seconds: number;
}

/** What {@link measureResources} returns. */
export interface Measurement {
  /** The prediction for the measured configuration, on this device's binding limit. */
  resources: Resources;
  /** `predictClasses` on the batch. */
  inference: PassMeasurement;
  /** One `trainStep` on the batch. */
  training: PassMeasurement;
}

/**
 * Builds NiN on `gpu` for `options` (the device's `maxStorageBufferBindingSize` replaces
 * `options.maxBindingBytes`), uploads a random batch, runs `predictClasses` and then one `trainStep` with
 * `SGD` (momentum buffers marked as started, so the step is a steady-state one), and compares the peak live
 * bytes and dispatched FLOPs of each with {@link analyzeResources}. Everything it creates is freed again.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu/device.ts";
 * import { measureResources } from "./measure.ts";
 * const gpu = await requestGpu();
 * const m = await measureResources(gpu, { batchSize: 2, resize: 96 });
 * console.log(m.training.predictedBytes, m.training.measuredBytes, m.training.dispatchedFlops);
 * gpu.destroy();
 * ```
 */
export async function measureResources(gpu: Gpu, options: ResourceOptions): Promise<Measurement> {
  const resources = analyzeResources({ ...options, maxBindingBytes: gpu.limits.maxStorageBufferBindingSize });
  const { batchSize, numClasses, momentum, weightDecay, nesterov, seed } = resources.options;
  await gpu.sync();
  const baseline = gpu.memory.liveBytes;
  const rng = new Random(seed + 1);
  const net = nin(gpu, resources.options);
  const images = Tensor.fromArray(gpu, rng.uniformArray(resources.inputShape.reduce((a, b) => a * b), 0, 1), [
    ...resources.inputShape,
  ]);
  const labels = Int32Array.from({ length: batchSize }, () => rng.int(numClasses));
  let optimizer: SGD | null = null;
  try {
    const pass = async (run: () => Promise<number>, predictedBytes: number, predictedFlops: number) => {
      await gpu.sync();
      gpu.resetPeak();
      const flops = gpu.flopsDispatched;
      const start = performance.now();
      const microBatch = await run();
      await gpu.sync();
      const seconds = (performance.now() - start) / 1000;
      const measuredBytes = gpu.memory.peakBytes - baseline;
      return {
        predictedBytes,
        measuredBytes,
        relativeDifference: (measuredBytes - predictedBytes) / predictedBytes,
        predictedFlops,
        dispatchedFlops: gpu.flopsDispatched - flops,
        microBatch,
        seconds,
      };
    };
    const { inference: inferenceMemory, training: trainingMemory } = resources.memory;
    const inference = await pass(
      async () => {
        await predictClasses(net, images);
        // predictClasses does not report its split; it uses exactly this rule.
        return microBatchSize(
          net,
          resources.inputShape.slice(1),
          batchSize,
          gpu.limits.maxStorageBufferBindingSize,
        );
      },
      inferenceMemory.bytes,
      resources.forward.flops,
    );
    optimizer = new SGD(net.parameters(), { lr: 0.01, momentum, weightDecay, nesterov });
    if (momentum !== 0) {
      // A restored state marks every momentum buffer as started: the step below is a steady-state one.
      optimizer.loadState(net.parameters().map((p) => new Float32Array(p.value.size)), 1);
    }
    const sgd = optimizer;
    const training = await pass(
      async () =>
        (await trainStep(net, sgd, images, labels, { microBatch: resources.options.microBatch ?? undefined }))
          .microBatch,
      trainingMemory.bytes,
      resources.trainStep.total,
    );
    return { resources, inference, training };
  } finally {
    optimizer?.dispose();
    images.dispose();
    net.dispose();
  }
}
