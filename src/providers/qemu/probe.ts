import type { Accelerator, Machine } from "./args.js";
import type { QemuSettings } from "./settings.js";

export interface Platform {
  accelerator: Accelerator;
  machine: Machine;
}

/**
 * The accelerator/machine pairs to try, best first. KVM only where /dev/kvm can be opened; on
 * this kind of host it can exist and still fail (`failed to set MSR`) or hang, which the probe boot
 * shows. A KVM that fails is broken whatever the machine, so only the last accelerator (the one
 * that must work) is tried with the fallback machine too.
 */
export function probeCandidates(settings: Pick<QemuSettings, "accelerator" | "machine">, kvmUsable: boolean): Platform[] {
  const accelerators: Accelerator[] = settings.accelerator === "auto" ? (kvmUsable ? ["kvm", "tcg"] : ["tcg"]) : [settings.accelerator];
  const machines: Machine[] = settings.machine === "auto" ? ["microvm", "q35"] : [settings.machine];
  return accelerators.flatMap((accelerator, i) => (i === accelerators.length - 1 ? machines : machines.slice(0, 1)).map((machine) => ({ accelerator, machine })));
}
