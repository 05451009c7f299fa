// Why an ssh(1) master never came up, in runc-rollout's words with ssh's own
// line quoted: host key problems (unknown, changed, revoked, an untrusted
// certificate), authentication, refused or timed-out connections.
import type { NodeSpec } from '../core/types.js';

function lines(stderr: string): string[] {
  return stderr
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('@'));
}

const pick = (all: string[], re: RegExp): string | undefined => all.find((l) => re.test(l));

/** The message for a master that exited (or failed to start) before it logged in. */
export function describeSshExit(code: number | null, stderr: string, spec: NodeSpec, timeoutMs: number): string {
  const all = lines(stderr);
  const files = (spec.ssh.knownHostsFiles?.length ? spec.ssh.knownHostsFiles : [spec.ssh.knownHosts]).join(', ');
  const quoted = (l: string) => `(ssh: ${l})`;
  if (all.some((l) => /^Host key verification failed/.test(l))) {
    const revoked = pick(all, /revoked/i);
    if (revoked) return `host key verification failed: the host key is marked @revoked ${quoted(revoked)}`;
    if (all.some((l) => /REMOTE HOST IDENTIFICATION HAS CHANGED/.test(l))) {
      const offending = pick(all, /^Offending .* key in /) ?? pick(all, /fingerprint for the .* key sent by the remote host/) ?? '';
      return `HOST KEY CHANGED: the server's host key does not match known_hosts; this may be an attack, or the host was reinstalled ${quoted(offending || 'REMOTE HOST IDENTIFICATION HAS CHANGED')}`;
    }
    const unknown = pick(all, /host key is known for|No .* host key is known/);
    if (unknown) {
      return `host key verification failed: the host key is not known and hostKeyPolicy is strict ${quoted(unknown)}; list the host key, or the CA that signs its host certificate (@cert-authority), in ${files}, or set hostKeyPolicy: accept-new`;
    }
    const other = all.filter((l) => !/^Host key verification failed/.test(l)).slice(-2).join('; ');
    return `host key verification failed${other ? ` ${quoted(other)}` : ''}`;
  }
  const denied = pick(all, /Permission denied \(/);
  if (denied) return `authentication failed for user ${spec.ssh.user} ${quoted(denied)}`;
  const refused = pick(all, /Connection refused/);
  if (refused) return `connection refused (is sshd running on that port?) ${quoted(refused)}`;
  const resolve = pick(all, /Could not resolve hostname/);
  if (resolve) return `host name does not resolve ${quoted(resolve)}`;
  const timedOut = pick(all, /timed out|Timeout/);
  if (timedOut) return `connect timed out after ${Math.round(timeoutMs / 100) / 10}s ${quoted(timedOut)}`;
  const tail = all.slice(-3).join('; ');
  return `ssh exited ${code ?? 'on a signal'} before the connection was up${tail ? ` ${quoted(tail)}` : ''}`;
}
