import type { AgentTls } from "../agent-tls/store.js";
import { TAG, type Provider } from "./types.js";
import { aroundCalls } from "./wrap.js";

/**
 * The same provider, with every VM it creates issued its agent certificate first: the spec carries
 * the certificate, key and trust bundle for the VM's boot data, and a tag names the identity the
 * certificate binds (the instance name at creation, which a warm-pool VM keeps when claimed).
 */
export function withAgentCertificates(provider: Provider, agentTls: AgentTls): Provider {
  const wrapped = aroundCalls(provider, (_method, call, options) => call(options));
  wrapped.create = async (spec, options) => provider.create({ ...spec, tags: { ...spec.tags, [TAG.agentIdentity]: spec.name }, agentTls: await agentTls.issueFor(spec.name) }, options);
  return wrapped;
}
