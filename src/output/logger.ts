// Human-facing log lines. Always stderr, so `--json` keeps stdout clean.
import type { Writable } from 'node:stream';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  debug(msg: string): void;
  /** Whether colour escape codes may be used on stderr. */
  readonly colour: boolean;
}

export function createLogger(out: Writable, opts: { colour: boolean; verbose: () => boolean }): Logger {
  const paint = (code: string, s: string) => (opts.colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const write = (s: string) => out.write(`${s}\n`);
  return {
    colour: opts.colour,
    info: (m) => write(m),
    warn: (m) => write(paint('33', `warning: ${m}`)),
    error: (m) => write(paint('31', `error: ${m}`)),
    debug: (m) => {
      if (opts.verbose()) write(paint('2', m));
    },
  };
}

/** A logger that drops everything (library use, tests). */
export const silentLogger: Logger = { colour: false, info() {}, warn() {}, error() {}, debug() {} };
