import assert from "node:assert/strict";
import { probeCandidates } from "./probe.js";

const names = (settings: Parameters<typeof probeCandidates>[0], kvm: boolean): string[] => probeCandidates(settings, kvm).map((p) => `${p.accelerator}/${p.machine}`);

describe("probeCandidates", () => {
  it("tries KVM with microvm first, then TCG with microvm and q35", () => {
    assert.deepEqual(names({ accelerator: "auto", machine: "auto" }, true), ["kvm/microvm", "tcg/microvm", "tcg/q35"]);
  });

  it("skips KVM when /dev/kvm cannot be opened", () => {
    assert.deepEqual(names({ accelerator: "auto", machine: "auto" }, false), ["tcg/microvm", "tcg/q35"]);
  });

  it("keeps to what the settings pin", () => {
    assert.deepEqual(names({ accelerator: "kvm", machine: "auto" }, false), ["kvm/microvm", "kvm/q35"]);
    assert.deepEqual(names({ accelerator: "auto", machine: "q35" }, true), ["kvm/q35", "tcg/q35"]);
    assert.deepEqual(names({ accelerator: "tcg", machine: "microvm" }, true), ["tcg/microvm"]);
  });
});
