import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The source files `npm run build` compiles into dist (and so into the npm package and the image). */
function builtSources(): string[] {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const configFile = ts.getParsedCommandLineOfConfigFile(`${root}tsconfig.build.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) });
  assert.ok(configFile, "tsconfig.build.json parses");
  assert.deepEqual(configFile.errors, []);
  // Only the import graph matters: files outside src/ (libraries, lib.d.ts) are read as empty.
  const options = { ...configFile.options, noLib: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language) => (name.startsWith(`${root}src/`) ? getSourceFile(name, language) : ts.createSourceFile(name, "", language));
  const program = ts.createProgram(configFile.fileNames, options, host);
  return program
    .getSourceFiles()
    .map((file) => file.fileName)
    .filter((name) => name.startsWith(`${root}src/`))
    .map((name) => name.slice(root.length));
}

describe("npm run build", function () {
  this.timeout(60_000);

  it("compiles what the CLI reaches and no test, test support or build script", () => {
    const built = builtSources();
    for (const runtime of ["src/main.ts", "src/providers/qemu/index.ts", "src/providers/aws/index.ts", "src/providers/sim/index.ts", "src/hypervisor/part.ts"]) {
      assert.ok(built.includes(runtime), `${runtime} is built`);
    }
    const buildScripts = ["src/providers/qemu/image/build.ts", "src/runtime/build.ts"];
    const strays = built.filter((name) => name.endsWith(".test.ts") || name.startsWith("src/test-support/") || buildScripts.includes(name));
    assert.deepEqual(strays, []);
  });
});
