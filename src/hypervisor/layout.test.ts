import assert from "node:assert/strict";
import { agentSocketPath, MAX_PODS_DIR_BYTES, podsDirProblem } from "./layout.js";

describe("pods dir", () => {
  const kataId = "a".repeat(64);

  it("holds Kata's sandbox sockets within a unix socket path's 107 bytes: a folder of at most 30 bytes", () => {
    assert.equal(MAX_PODS_DIR_BYTES, 30);
    const longest = `/${"p".repeat(29)}`;
    assert.equal(podsDirProblem(longest), undefined);
    assert.equal(Buffer.byteLength(agentSocketPath(longest, kataId)), 107);
    assert.equal(podsDirProblem("/run/peerpod/pods"), undefined, "the default");
    assert.equal(podsDirProblem(`${longest}/`), undefined, "a trailing slash takes no room");
  });

  it("refuses a longer folder, saying how long the socket path would be and what fits", () => {
    assert.match(podsDirProblem(`/${"p".repeat(30)}`) ?? "", /agent socket <dir>\/<64-character sandbox id>\/agent\.ttrpc would be 108 bytes, over the 107-byte limit.*at most 30 bytes/);
    assert.match(podsDirProblem(`/tmp/${"é".repeat(13)}`) ?? "", /would be 108 bytes/, "bytes, not characters");
  });
});
