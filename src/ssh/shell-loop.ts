// The node side of the shell driver (shell-driver.ts): the POSIX sh loop that
// reads framed requests from its stdin and runs each script as an exec would,
// and how a script is framed for it.

export const READY = '@@rrd ready ';

/** The exact byte reader the node's loop proved it has (see DRIVER_SCRIPT). */
export type ShellReader = 'head' | 'dd' | 'dd1';

/**
 * The remote loop. Framing: `@@rrq ID SCRIPT_BYTES STDIN_BYTES TIMEOUT_S` then
 * the bytes; answer `@@rrr ID CODE OUT_BYTES ERR_BYTES` then the bytes.
 *
 * Frames need a reader that takes exactly N bytes from a pipe and not one
 * more: BusyBox's `head -c` reads ahead and would eat the next request. The
 * loop proves its reader on the node's own tools before it says ready: GNU
 * `head -c`, else `dd` counting bytes (GNU, BusyBox >= 1.34), else `dd bs=1`.
 * Per request it starts five processes (reader, timeout, sh, wc, cat; six
 * with stdin); the script and its stdin are files, so whatever a script
 * leaves unread needs no draining. `run` and `done` record the request in
 * flight and its exit status, for a look after the loop died (shell-look.ts).
 * A TERM or HUP while a script runs ends the loop after its answer.
 */
export const DRIVER_SCRIPT = `set -u
trap '' PIPE
RR_D=$(mktemp -d "\${TMPDIR:-/tmp}/runc-rollout-sh.XXXXXX") || exit 97
trap 'rm -rf "$RR_D"' EXIT
rr_busy=
rr_stop=
trap '[ -n "$rr_busy" ] && rr_stop=129 || exit 129' HUP
trap '[ -n "$rr_busy" ] && rr_stop=143 || exit 143' TERM
rr_exact() { [ "$(printf abcdef | { "$@" >/dev/null 2>&1; cat; })" = cdef ]; }
if rr_exact head -c 2; then
  rr_get() { head -c "$1"; }; RR_R=head
elif rr_exact dd bs=4 count=2 iflag=count_bytes,fullblock; then
  rr_get() { dd bs=64k count="$1" iflag=count_bytes,fullblock 2>/dev/null; }; RR_R=dd
elif rr_exact dd bs=1 count=2; then
  rr_get() { dd bs=1 count="$1" 2>/dev/null; }; RR_R=dd1
else
  echo 'no exact byte reader on this node (head -c, dd)' >&2; exit 98
fi
# the folder is private (mktemp -d): files in it need no umask of their own
umask 022
printf '%s%s %s\\n' '${READY}' "$RR_R" "$RR_D"
while IFS=' ' read -r rr_t rr_id rr_sl rr_il rr_to; do
  [ "$rr_t" = @@rrq ] || exit 96
  rr_get "$rr_sl" >"$RR_D/s" || exit 95
  rr_in=/dev/null
  if [ "$rr_il" != 0 ]; then rr_get "$rr_il" >"$RR_D/i" || exit 95; rr_in=$RR_D/i; fi
  rr_busy=1
  printf '%s\\n' "$rr_id" >"$RR_D/run"
  if [ "$rr_to" = 0 ]; then
    sh "$RR_D/s" <"$rr_in" >"$RR_D/o" 2>"$RR_D/e" &
  else
    timeout -k 5 "$rr_to" sh "$RR_D/s" <"$rr_in" >"$RR_D/o" 2>"$RR_D/e" &
  fi
  rr_p=$!
  # a trapped signal ends wait early: wait until the script itself has ended
  while :; do wait "$rr_p"; rr_c=$?; kill -0 "$rr_p" 2>/dev/null || break; done
  printf '%s %s\\n' "$rr_id" "$rr_c" >"$RR_D/done"
  [ "$rr_in" = /dev/null ] || : >"$rr_in"
  wc -c "$RR_D/o" "$RR_D/e" >"$RR_D/n"
  { read -r rr_o _; read -r rr_e _; } <"$RR_D/n"
  printf '@@rrr %s %s %s %s\\n' "$rr_id" "$rr_c" "$rr_o" "$rr_e"
  cat "$RR_D/o" "$RR_D/e"
  rr_busy=
  [ -z "$rr_stop" ] || exit "$rr_stop"
done
`;

/**
 * The script as the loop runs it: inside `{ }`, so sh parses all of it before
 * running any of it. A frame cut short (the channel closed half-way) is then a
 * syntax error, never the first half of a script run on its own.
 */
export function framedScript(script: string): Buffer {
  return Buffer.from(`{\n${script}\n}\n`, 'utf8');
}

