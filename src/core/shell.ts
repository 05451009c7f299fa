// POSIX shell quoting. Every remote command is assembled from validated values
// passed through `q`, never by bare interpolation.

/** Quote one word for POSIX sh: wraps in single quotes, escaping embedded ones. */
export function q(value: string | number): string {
  const s = String(value);
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Join words into one shell-quoted command line. */
export function cmd(...words: (string | number)[]): string {
  return words.map(q).join(' ');
}
