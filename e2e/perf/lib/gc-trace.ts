import { open } from "node:fs/promises";

/** V8 pauses a server printed with --trace-gc over one span of its log. */
export interface GcPauses {
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  markCompactMs: number;
}

// Node 24's V8 adds "pooled: N MB," before the pause
const PAUSE = /: (Scavenge|Minor Mark-Sweep|Mark-Compact|Mark-Sweep)\b[^,]*,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ [\d.]+ ms/;

/** Counts the --trace-gc lines a log gained since `fromByte` (young-generation pauses apart from full ones). */
export async function gcPausesSince(logFile: string, fromByte: number): Promise<GcPauses> {
  const file = await open(logFile);
  try {
    const { size } = await file.stat();
    const buffer = Buffer.alloc(Math.max(0, size - fromByte));
    await file.read(buffer, 0, buffer.length, fromByte);
    return countPauses(buffer.toString("utf8"));
  } finally {
    await file.close();
  }
}

/** The pauses in --trace-gc output. */
export function countPauses(text: string): GcPauses {
  const pauses: GcPauses = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0 };
  for (const line of text.split("\n")) {
    const match = PAUSE.exec(line);
    if (!match) continue;
    const ms = Number(match[2]);
    if (match[1]!.startsWith("Mark-")) {
      pauses.markCompacts += 1;
      pauses.markCompactMs += ms;
    } else {
      pauses.scavenges += 1;
      pauses.scavengeMs += ms;
    }
  }
  return pauses;
}
