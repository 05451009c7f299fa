// The one awk pass that ends the facts script (src/facts/script.ts). The shell
// hands it every record as arguments, and it reads the files itself, so a node
// pays one process for what used to cost a few per value and per file: it
// encodes values (plain or hex, no base64 or tr pipes), reads the sysctl files
// (matching lines with their numbers), the live sysctl and the state file.
// It has only a BEGIN block, so it reads no input. (Stuck `runc init`
// processes are looked for by the shell after it: stuck-scan.ts.)
//
// Arguments, in any order (each token then its operands):
//   R KEY N FIELD...   one record, N fields
//   D DIR              sysctl_dir
//   F PATH REAL        sysctl_file: PATH as found, REAL its resolved path
//   S                  the state file exists: send it
// It works with mawk, gawk and BusyBox awk.

export interface FactsAwkOptions {
  stateFile: string;
  liveFile: string;
}

// A value the parser takes plain (src/facts/parse.ts decodeField).
const PLAIN = '^[A-Za-z0-9._/:@+=,%~-]*$';

export function factsAwk(o: FactsAwkOptions): string {
  return `function enc(s,   i, n, r) {
  if (s ~ PLAIN) return "r:" s
  n = length(s); r = ""
  for (i = 1; i <= n; i++) r = r HX[substr(s, i, 1)]
  return "x:" r
}
function slurp(f,   l, r) {
  r = ""
  while ((getline l < f) > 0) r = r l "\\n"
  close(f)
  sub(/\\n+$/, "", r)
  return r
}
# grep -n 'pipe|[*?[]': lines that name the key or a glob that may match it
function matches(f,   l, n, r) {
  r = ""; n = 0
  while ((getline l < f) > 0) { n++; if (l ~ /pipe|[*?[]/) r = r (r == "" ? "" : "\\n") n ":" l }
  close(f)
  return r
}
BEGIN {
  PLAIN = "${PLAIN}"
  for (i = 1; i < 256; i++) HX[sprintf("%c", i)] = sprintf("%02x", i)
  for (i = 1; i < ARGC; i++) {
    t = ARGV[i]
    if (t == "R") { r = ARGV[i + 1]; n = ARGV[i + 2] + 0; i += 2; for (j = 0; j < n; j++) r = r "\\t" enc(ARGV[++i]); print r }
    else if (t == "D") print "sysctl_dir\\t" enc(ARGV[++i])
    else if (t == "F") { p = ARGV[++i]; r = ARGV[++i]; print "sysctl_file\\t" enc(p) "\\t" enc(r) "\\t" enc(matches(p)) }
    else if (t == "S") print "state\\t" enc(slurp("${o.stateFile}"))
  }
  l = ""; getline l < "${o.liveFile}"; close("${o.liveFile}")
  print "sysctl_live\\t" enc(l)
}`;
}
