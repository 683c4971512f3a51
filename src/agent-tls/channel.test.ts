import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureAgentCa } from "../certs/agent.js";
import { silentLogger } from "../log/logger.js";
import { agentChannelPlaintext } from "../metrics/agent-tls.js";
import { agentChannel } from "./channel.js";

const plaintext = async (): Promise<number | undefined> => (await agentChannelPlaintext.get()).values[0]?.value;

describe("the agent channel a process speaks", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "peerpods-agent-channel-test-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is plain TCP without a CA folder, and says so in the metric", async () => {
    assert.equal(await agentChannel(undefined, silentLogger), undefined);
    assert.equal(await plaintext(), 1);
  });

  it("is mutual TLS with a CA folder, checked at start", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 2, force: true });
    assert.ok(await agentChannel(dir, silentLogger));
    assert.equal(await plaintext(), 0);
  });

  it("stops the process with the reason when the folder does not load", async () => {
    await ensureAgentCa({ outDir: dir, validDays: 2, force: true });
    await writeFile(join(dir, "ca.key"), "not a key");
    await assert.rejects(agentChannel(dir, silentLogger), /agent channel certificates in .*/);
    await rm(join(dir, "tls.crt"));
    await assert.rejects(agentChannel(dir, silentLogger), /ENOENT/);
  });
});
