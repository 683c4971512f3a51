import { InvalidArgumentError } from "commander";
import { podsDirProblem } from "../hypervisor/layout.js";

/** Commander argument parsers: each throws a one-line error that commander prefixes with the flag name. */

export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

export const port = integer(0, 65535);

export function oneOf<T extends string>(allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${allowed.join(", ")}`);
    return value as T;
  };
}

export function listOf<T extends string>(allowed: readonly T[]): (value: string) => T[] {
  const one = oneOf(allowed);
  return (value) => {
    const items = value.split(",").map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) throw new InvalidArgumentError(`must list at least one of ${allowed.join(", ")}`);
    return [...new Set(items.map(one))];
  };
}

/** Repeatable/comma-separated free-text list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

/** The hypervisor part's pods dir: every Kata sandbox's agent socket under it must fit a unix socket path. */
export function podsDir(value: string): string {
  const problem = podsDirProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}
