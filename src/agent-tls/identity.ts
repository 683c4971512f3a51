/** The URI SAN that binds a VM's agent certificate to its instance name (pkg/agenttls.IdentityPrefix says the same). */
export const IDENTITY_PREFIX = "urn:peerpods:vm:";

/** Instance names that can stand in a URI SAN as they are (and in Node's comma-separated subjectaltname). */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function agentIdentity(name: string): string {
  if (!NAME.test(name)) throw new Error(`instance name ${JSON.stringify(name)} cannot name a VM's agent certificate`);
  return `${IDENTITY_PREFIX}${name}`;
}

/** Whether Node's `subjectaltname` string of a certificate names `identity` (exactly, not as a prefix). */
export function certificateNames(subjectAltName: string | undefined, identity: string): boolean {
  return (subjectAltName ?? "").split(", ").includes(`URI:${identity}`);
}
