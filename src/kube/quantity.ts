/**
 * Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) as exact integers:
 * CPU in millicores, everything else in base units. Rounds up like the scheduler does.
 */

const BINARY_SUFFIX: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};

const DECIMAL_EXPONENT: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E))?$/;

/** Largest value accepted, so results stay exact as JS numbers. */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class QuantityError extends Error {}

/** Parses a quantity and returns `value * 10^scale` rounded up, as a number. */
export function parseQuantityScaled(input: unknown, scale: number): number {
  const text = typeof input === "number" ? String(input) : input;
  if (typeof text !== "string") throw new QuantityError(`quantity must be a string, got ${typeof input}`);
  const match = QUANTITY.exec(text.trim());
  if (!match) throw new QuantityError(`"${truncate(text)}" is not a valid quantity`);
  const [, sign, number = "0", binary, exponent, decimal] = match;
  if (sign === "-") throw new QuantityError(`"${truncate(text)}" is negative`);
  const [whole = "0", fraction = ""] = number.split(".");
  const numerator = BigInt((whole || "0") + fraction) * (binary ? (BINARY_SUFFIX[binary] ?? 1n) : 1n);
  const power = scale - fraction.length + suffixPower(binary, exponent, decimal);
  if (power > 30) throw new QuantityError(`"${truncate(text)}" is too large`);
  const result = power >= 0 ? numerator * 10n ** BigInt(power) : ceilDiv(numerator, 10n ** BigInt(-power));
  if (result > MAX_SAFE) throw new QuantityError(`"${truncate(text)}" is too large`);
  return Number(result);
}

function suffixPower(binary: string | undefined, exponent: string | undefined, decimal: string | undefined): number {
  if (binary) return 0;
  if (exponent) return Number(exponent.slice(1));
  return DECIMAL_EXPONENT[decimal ?? ""] ?? 0;
}

export const parseMilli = (q: unknown): number => parseQuantityScaled(q, 3);
export const parseUnits = (q: unknown): number => parseQuantityScaled(q, 0);

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
