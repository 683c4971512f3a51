#!/usr/bin/env node
import { Command, Option } from "commander";
import { ensureAgentCa, finishAgentCaRotation, rotateAgentCa } from "./certs/agent.js";
import { certFiles, ensureCerts, injectCaBundle, validateSans } from "./certs/generate.js";
import { collect, integer, oneOf } from "./config/parsers.js";
import { addServeOptions, type ServeConfig } from "./config/serve.js";
import { createLogger } from "./log/logger.js";
import { loadPolicyFile } from "./policy/file.js";
import { serve } from "./serve.js";
import { loadKubeConfig } from "./kube/client.js";
import { collectStatus } from "./status/collect.js";
import { renderReport } from "./status/report.js";

const program = new Command()
  .name("peerpods")
  .description("Run Kubernetes peer pods on their own VMs: admission webhook, scheduler extender, advertiser, VM worker")
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text.split("\n")[0] + "\n") });

addServeOptions(program.command("serve").description("run the parts of peerpods named by --parts")).action(async (options: ServeConfig) => {
  const log = createLogger(options.logLevel);
  let serving: Awaited<ReturnType<typeof serve>>;
  try {
    serving = await serve(options, log);
  } catch (error) {
    log.fatal({ err: error }, "could not start");
    console.error(`peerpods: ${(error as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    serving.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled promise rejection"));
});

program
  .command("certs")
  .description("generate (or reuse) a CA and a serving certificate: ca.crt, tls.crt, tls.key")
  .addOption(new Option("--out <dir>", "output folder").default("certs"))
  .addOption(new Option("--dns <names>", "DNS SANs, comma-separated or repeated").argParser(collect).default([] as string[]))
  .addOption(new Option("--ip <addresses>", "IP SANs, comma-separated or repeated").argParser(collect).default([] as string[]))
  .addOption(new Option("--days <n>", "validity in days").argParser(integer(1, 3650)).default(365))
  .addOption(new Option("--force", "regenerate even when valid certificates exist"))
  .addOption(new Option("--inject <manifest>", "write the CA bundle into caBundle fields of this manifest"))
  .action(async (options: { out: string; dns: string[]; ip: string[]; days: number; force?: boolean; inject?: string }) => {
    const dnsNames = options.dns.length || options.ip.length ? options.dns : ["peerpods.peerpods-system.svc", "localhost"];
    const ipAddresses = options.dns.length || options.ip.length ? options.ip : ["127.0.0.1"];
    const invalid = validateSans(dnsNames, ipAddresses);
    if (invalid) program.error(`peerpods certs: ${invalid}`);
    const result = await ensureCerts({ outDir: options.out, dnsNames, ipAddresses, validDays: options.days, force: Boolean(options.force) });
    const files = certFiles(options.out);
    const daysLeft = Math.floor((result.notAfter.getTime() - Date.now()) / 86_400_000);
    console.error(`${result.reused ? "reused" : "wrote"} ${files.ca}, ${files.cert}, ${files.key}; valid until ${result.notAfter.toISOString()} (${daysLeft} days)`);
    if (options.inject) console.error(`caBundle written to ${await injectCaBundle(options.inject, result.caBundle)} place(s) in ${options.inject}`);
    console.log(result.caBundle);
  });

program
  .command("agent-certs")
  .description("generate (or reuse) the agent channel's CA and the node side's client certificate: ca.crt, ca.key, tls.crt, tls.key (mount them as --agent-tls-dir)")
  .addOption(new Option("--out <dir>", "output folder").default("certs/agent"))
  .addOption(new Option("--days <n>", "validity in days").argParser(integer(1, 3650)).default(365))
  .addOption(new Option("--force", "regenerate even when a valid CA exists"))
  .addOption(new Option("--rotate", "roll the CA: a new one signs from now on, the old one stays trusted (running VMs keep working)").conflicts(["force", "finishRotation"]))
  .addOption(new Option("--finish-rotation", "drop every CA but the signing one, once no VM booted before --rotate runs").conflicts("force"))
  .action(async (options: { out: string; days: number; force?: boolean; rotate?: boolean; finishRotation?: boolean }) => {
    const files = `${options.out}/{ca.crt,ca.key,tls.crt,tls.key}`;
    if (options.finishRotation) {
      await finishAgentCaRotation(options.out);
      console.error(`rewrote ${files}: only the signing CA is trusted now`);
      return;
    }
    const result = options.rotate
      ? await rotateAgentCa({ outDir: options.out, validDays: options.days })
      : await ensureAgentCa({ outDir: options.out, validDays: options.days, force: Boolean(options.force) });
    console.error(`${result.reused ? "reused" : "wrote"} ${files}; CA valid until ${result.caNotAfter.toISOString()}, client certificate until ${result.clientNotAfter.toISOString()}`);
  });

program
  .command("policy")
  .description("work with PeerPodPolicy files")
  .command("validate")
  .description("check a policy file and print every error with its path")
  .argument("<file>", "YAML or JSON: a PeerPodPolicy object or its spec")
  .action(async (file: string) => {
    const result = await loadPolicyFile(file);
    if (result.ok) {
      console.log(`${file}: valid (${result.spec.instanceTypes.length} instance types, runtime classes ${result.spec.runtimeClassNames.join(", ")})`);
      return;
    }
    for (const error of result.errors) console.error(`${file}: ${error.path}: ${error.message}`);
    process.exitCode = 1;
  });

program
  .command("status")
  .description("peer pods with their VMs, nodes' VM slots, quota use and the policy in force")
  .addOption(new Option("-o, --output <format>", "table or json").argParser(oneOf(["table", "json"] as const)).default("table"))
  .addOption(new Option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)").env("PEERPODS_KUBECONFIG"))
  .action(async (options: { output: "table" | "json"; kubeconfig?: string }) => {
    const report = await collectStatus(loadKubeConfig(options.kubeconfig));
    console.log(options.output === "json" ? JSON.stringify(report, null, 2) : renderReport(report));
  });

await program.parseAsync(process.argv);
