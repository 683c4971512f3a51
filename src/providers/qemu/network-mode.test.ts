import assert from "node:assert/strict";
import type { ProviderError } from "../types.js";
import { chooseNetwork } from "./network-mode.js";

const everything = { root: true, tun: true, ip: true };

describe("qemu network mode", () => {
  it("auto: the VPC where the host has root, /dev/net/tun and ip, else user mode saying what is missing", () => {
    assert.equal(chooseNetwork("auto", everything).mode, "vpc");
    assert.deepEqual(chooseNetwork("auto", { ...everything, root: false }), { mode: "user", reason: "auto: not running as root" });
    assert.deepEqual(chooseNetwork("auto", { root: true, tun: false, ip: false }), { mode: "user", reason: "auto: no usable /dev/net/tun, no `ip` command (iproute2)" });
  });

  it("user: user mode even where the VPC could work", () => {
    assert.equal(chooseNetwork("user", everything).mode, "user");
  });

  it("vpc: the VPC, or an invalid-settings error where it cannot work", () => {
    assert.equal(chooseNetwork("vpc", everything).mode, "vpc");
    assert.throws(() => chooseNetwork("vpc", { ...everything, tun: false }), (error: ProviderError) => error.kind === "invalid" && /no usable \/dev\/net\/tun/.test(error.message));
  });
});
