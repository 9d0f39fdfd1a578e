// GPU faults for subprocess tests of the tasks, loaded with `deno run --preload tests/fault_injection.ts`
// before the task's own code. NIN_FAULT selects the fault:
// - "no-adapter": `navigator.gpu.requestAdapter()` finds nothing, as on a machine without a usable GPU;
// - "lose-on-sigusr2": SIGUSR2 destroys the WebGPU device, wherever the run is (a device lost mid-run);
// - "hang-in-second-checkpoint-write": the second checkpoint's temporary file gets half its bytes, then the
//   write never returns and stderr says `fault: hanging in a checkpoint write`, so a test can SIGKILL the
//   process in the middle of writing a checkpoint.
const fault = Deno.env.get("NIN_FAULT");

if (fault === "no-adapter") {
  Object.defineProperty(navigator, "gpu", {
    value: { requestAdapter: () => Promise.resolve(null), getPreferredCanvasFormat: () => "rgba8unorm" },
  });
} else if (fault === "lose-on-sigusr2") {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (descriptor?: GPUDeviceDescriptor) {
    const device = await requestDevice.call(this, descriptor);
    Deno.addSignalListener("SIGUSR2", () => device.destroy());
    return device;
  };
} else if (fault === "hang-in-second-checkpoint-write") {
  // Temporary files of atomic writes that get bytes (the writability probe before a run gets none).
  const open = Deno.open;
  let checkpointWrites = 0;
  Deno.open = async function (path: string | URL, options?: Deno.OpenOptions) {
    const file = await open(path, options);
    if (!String(path).includes(".safetensors.tmp-")) return file;
    const write = file.write.bind(file);
    let first = true;
    file.write = async (bytes: Uint8Array) => {
      if (first && ++checkpointWrites === 2) {
        await write(bytes.subarray(0, Math.floor(bytes.length / 2)));
        await file.syncData();
        console.error("fault: hanging in a checkpoint write");
        await new Promise((resolve) => setTimeout(resolve, 2 ** 30)); // a timer keeps the process alive
      }
      first = false;
      return await write(bytes);
    };
    return file;
  };
} else if (fault !== undefined) {
  throw new Error(`unknown NIN_FAULT ${fault}`);
}
