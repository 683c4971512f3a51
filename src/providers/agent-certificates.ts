import type { AgentTls } from "../agent-tls/store.js";
import { TAG, type Provider } from "./types.js";

/**
 * The same provider, with every VM it creates issued its agent certificate first: the spec carries
 * the certificate, key and trust bundle for the VM's boot data, and a tag names the identity the
 * certificate binds (the instance name at creation, which a warm-pool VM keeps when claimed).
 */
export function withAgentCertificates(provider: Provider, agentTls: AgentTls): Provider {
  const { claim } = provider;
  return {
    get name() {
      return provider.name;
    },
    get readyPollMs() {
      return provider.readyPollMs;
    },
    create: async (spec, options) => provider.create({ ...spec, tags: { ...spec.tags, [TAG.agentIdentity]: spec.name }, agentTls: await agentTls.issueFor(spec.name) }, options),
    get: (id, options) => provider.get(id, options),
    list: (tags, options) => provider.list(tags, options),
    delete: (id, options) => provider.delete(id, options),
    ...(claim ? { claim: (id, spec, options) => claim.call(provider, id, spec, options) } : {}),
    health: () => provider.health(),
    close: () => provider.close(),
  };
}
