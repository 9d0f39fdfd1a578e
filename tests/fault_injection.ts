// GPU faults for subprocess tests of the tasks, loaded with `deno run --preload tests/fault_injection.ts`
// before the task's own code. NIN_FAULT selects the fault:
// - "no-adapter": `navigator.gpu.requestAdapter()` finds nothing, as on a machine without a usable GPU;
// - "lose-on-sigusr2": SIGUSR2 destroys the WebGPU device, wherever the run is (a device lost mid-run).
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
} else if (fault !== undefined) {
  throw new Error(`unknown NIN_FAULT ${fault}`);
}
