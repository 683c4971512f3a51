import assert from "node:assert/strict";
import { parse } from "yaml";
import { cloudInitUserData, MAX_USER_DATA_BYTES } from "./userdata.js";

describe("aws user data", () => {
  it("is base64 cloud-config writing the agent configuration, byte for byte, readable by root only", () => {
    const config = '{"pod":"ns/p","note":"quotes \\" and\\nnewlines, ünïcode"}';
    const text = Buffer.from(cloudInitUserData(config, "/run/peerpods/agent-config"), "base64").toString("utf8");
    assert.match(text, /^#cloud-config\n/);
    const document = parse(text) as { write_files: { path: string; permissions: string; owner: string; encoding: string; content: string }[] };
    assert.equal(document.write_files.length, 1);
    const [file] = document.write_files;
    assert.deepEqual({ ...file, content: undefined }, { path: "/run/peerpods/agent-config", permissions: "0600", owner: "root:root", encoding: "b64", content: undefined });
    assert.equal(Buffer.from(file?.content ?? "", "base64").toString("utf8"), config);
  });

  it("writes the VM's agent TLS folder root-only next to the configuration", () => {
    const tls = { "tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "BUNDLE" };
    const text = Buffer.from(cloudInitUserData("{}", "/run/peerpods/agent-config", tls), "base64").toString("utf8");
    const files = (parse(text) as { write_files: { path: string; permissions: string; content: string }[] }).write_files;
    assert.deepEqual(
      files.map((f) => [f.path, f.permissions, Buffer.from(f.content, "base64").toString()]),
      [
        ["/run/peerpods/agent-config", "0600", "{}"],
        ["/run/peerpods/agent-tls/tls.crt", "0600", "CERT"],
        ["/run/peerpods/agent-tls/tls.key", "0600", "KEY"],
        ["/run/peerpods/agent-tls/ca.crt", "0600", "BUNDLE"],
      ],
    );
  });

  it("refuses a configuration that would exceed EC2's user-data limit", () => {
    assert.throws(() => cloudInitUserData("x".repeat(MAX_USER_DATA_BYTES), "/a"), /EC2 allows 16384/);
  });
});
