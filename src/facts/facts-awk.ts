// The one awk pass that ends the facts script (src/facts/script.ts). The shell
// hands it every record as arguments, and it reads the files itself, so a node
// pays one process for what used to cost a few per value and per file: it
// encodes values (plain or hex, no base64 or tr pipes), reads the sysctl files
// (matching lines with their numbers), the live sysctl and the state file, and
// counts stuck `runc init` processes from the `ps` it reads on stdin, or from
// /proc where `ps` has no etimes (BusyBox).
//
// Arguments, in any order (each token then its operands):
//   R KEY N FIELD...   one record, N fields
//   D DIR              sysctl_dir
//   F PATH REAL        sysctl_file: PATH as found, REAL its resolved path
//   S                  the state file exists: send it
//   P PROCDIR...       (last) /proc/PID folders, for the scan without ps
// It works with mawk, gawk and BusyBox awk: NUL in /proc/PID/cmdline ends a
// record in BusyBox awk and stays inside it in the others (argv01).

export interface FactsAwkOptions {
  stuckAfterSeconds: number;
  stateFile: string;
  liveFile: string;
}

// A value the parser takes plain (src/facts/parse.ts decodeField).
const PLAIN = '^[A-Za-z0-9._/:@+=,%~-]*$';

export function factsAwk(o: FactsAwkOptions): string {
  const stuck = Math.trunc(o.stuckAfterSeconds);
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
function argv01(f,   a, b, p) {
  A0 = ""; A1 = ""
  if ((getline a < f) > 0) {
    if (length(Z) == 1 && index(a, Z)) { split(a, p, Z); A0 = p[1]; A1 = p[2] }
    else { A0 = a; if ((getline b < f) > 0) A1 = b }
  }
  close(f)
}
BEGIN {
  PLAIN = "${PLAIN}"
  for (i = 1; i < 256; i++) HX[sprintf("%c", i)] = sprintf("%02x", i)
  Z = sprintf("%c", 0)
  for (i = 1; i < ARGC; i++) {
    t = ARGV[i]
    if (t == "R") { r = ARGV[i + 1]; n = ARGV[i + 2] + 0; i += 2; for (j = 0; j < n; j++) r = r "\\t" enc(ARGV[++i]); print r }
    else if (t == "D") print "sysctl_dir\\t" enc(ARGV[++i])
    else if (t == "F") { p = ARGV[++i]; r = ARGV[++i]; print "sysctl_file\\t" enc(p) "\\t" enc(r) "\\t" enc(matches(p)) }
    else if (t == "S") print "state\\t" enc(slurp("${o.stateFile}"))
    else if (t == "P") { while (++i < ARGC) PIDS[++NP] = ARGV[i] }
  }
  l = ""; getline l < "${o.liveFile}"; close("${o.liveFile}")
  print "sysctl_live\\t" enc(l)
  ARGC = 1
}
$1 > ${stuck} && $2 ~ /(^|\\/)runc$/ && $3 == "init" { stuck++ }
END {
  # no output from ps: no procps (BusyBox ps knows no etimes); read /proc.
  # Only argv[0] and argv[1]: a shell running this very script has the pattern in its argv[2].
  if (NR == 0 && NP > 0) {
    up = 0
    if ((getline u < "/proc/uptime") > 0) { split(u, U, " "); up = int(U[1]) }
    for (k = 1; k <= NP; k++) {
      argv01(PIDS[k] "/cmdline")
      c = A0; if (A1 != "") c = c " " A1
      if (c !~ /(^|\\/)runc init$/) continue
      f = PIDS[k] "/stat"; st = ""
      if ((getline st < f) <= 0) { close(f); continue }
      close(f)
      sub(/^.*\\) /, "", st); split(st, S, " ")
      # field 22 of stat (20 after the command name) is the start time in USER_HZ ticks: 100 on Linux
      if (up - int(S[20] / 100) > ${stuck}) stuck++
    }
  }
  print "stuck_runc_init\\tr:" (stuck + 0)
}`;
}
