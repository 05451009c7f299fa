// Small commander helpers every command uses: flag errors are reported by
// commander itself, with usage, before anything runs.
import { InvalidArgumentError } from 'commander';

/** Validate a flag value with a core parser but keep the text (the action parses it again, typed). */
export function checked<T>(parse: (s: string) => T): (s: string) => string {
  return (s) => {
    try {
      parse(s);
      return s;
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** For repeatable flags: each occurrence is appended. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];
