import { Presets, SingleBar } from "cli-progress";

/** "4.2s", "3m07s". */
export function formatElapsed(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
}

/** "12.3 MB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The bar on screen, if any: a line printed meanwhile must not land in the middle of it. */
let activeBar: { out: NodeJS.WriteStream } | undefined;

/** Prints a line; above the progress bar while one is on screen (it redraws below on its next tick). */
export function printLine(text: string): void {
  if (activeBar) activeBar.out.write(`\r\x1b[K${text}\n`);
  else process.stdout.write(`${text}\n`);
}

/** Reports a step's latest detail (e.g. the build's current line) while it runs. */
export type Detail = (text: string) => void;

/**
 * Numbered steps with elapsed times: on a terminal one live progress bar (step n of total, the
 * step's latest detail, its elapsed time); elsewhere (CI, a test) one line per step start and end.
 */
export class Steps {
  readonly #started = Date.now();
  readonly #bar: SingleBar | undefined;
  #done = 0;

  constructor(private readonly total: number, private readonly out: NodeJS.WriteStream = process.stdout) {
    if (out.isTTY) {
      this.#bar = new SingleBar(
        { format: " {bar} {value}/{total} {title} {elapsed} {detail}", hideCursor: true, barsize: 20, stream: out, clearOnComplete: true, linewrap: false },
        Presets.shades_classic,
      );
    }
  }

  async run<T>(title: string, work: (detail: Detail) => Promise<T>, summary?: (result: T) => string): Promise<T> {
    const number = this.#done + 1;
    const since = Date.now();
    let detail = "";
    const label = `[${number}/${this.total}] ${title}`;
    if (this.#bar) {
      this.#bar.start(this.total, this.#done, this.#payload(title, since, detail));
      activeBar = { out: this.out };
    } else this.out.write(`${label} ...\n`);
    const timer = this.#bar ? setInterval(() => this.#bar!.update(this.#done, this.#payload(title, since, detail)), 250) : undefined;
    try {
      const result = await work((text) => {
        detail = text.slice(0, 100);
      });
      this.#done = number;
      if (this.#bar) this.#bar.stop();
      this.out.write(`${label}: ${summary ? summary(result) : "done"} (${formatElapsed(Date.now() - since)})\n`);
      return result;
    } catch (error) {
      if (this.#bar) this.#bar.stop();
      this.out.write(`${label}: failed after ${formatElapsed(Date.now() - since)}\n`);
      throw error;
    } finally {
      clearInterval(timer);
      activeBar = undefined;
    }
  }

  elapsed(): string {
    return formatElapsed(Date.now() - this.#started);
  }

  #payload(title: string, since: number, detail: string): Record<string, string> {
    return { title, elapsed: since ? formatElapsed(Date.now() - since) : "", detail: detail ? `· ${detail}` : "" };
  }
}
