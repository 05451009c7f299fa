// The processes behind one node: a namespace holder (pid 1 of the node's
// mount+pid namespaces), sshd entered into it, or a TCP black hole.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Tail, childrenOf, descendants, exited, killQuietly, run, waitForListener, type ExecResult, type RunOptions } from './proc.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class NamespaceNode {
  private holder?: ChildProcess;
  /** Host pid of the namespace's pid 1. */
  private pid1 = 0;
  private sshd?: ChildProcess;
  // Large enough that tests can count every connection of a run in it.
  readonly log = new Tail(1_000_000);

  constructor(readonly name: string, readonly dir: string, readonly host: string, readonly port: number) {}

  /** Every host pid this node started, for the exit-time safety net. */
  pids(): number[] {
    return [this.holder?.pid, this.pid1, this.sshd?.pid].filter((p): p is number => !!p);
  }

  async start(script: string, timeoutMs: number): Promise<void> {
    const scriptPath = `${this.dir}/ns-init.sh`;
    writeFileSync(scriptPath, script);
    // --kill-child: SIGKILL of unshare takes pid 1, and with it the whole namespace, down.
    const holder = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child', 'bash', scriptPath], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH, LANG: 'C' },
    });
    this.holder = holder;
    const setupLog = new Tail();
    holder.stderr.on('data', (c: Buffer) => setupLog.push(c));
    holder.stdin.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`namespace setup did not finish in ${timeoutMs} ms: ${setupLog}`)), timeoutMs);
      holder.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready\n')) { clearTimeout(timer); resolve(); }
      });
      // 'close', not 'exit': by then all of the script's stderr has arrived.
      holder.once('close', (code, sig) => { clearTimeout(timer); reject(new Error(`namespace setup failed (exit ${code ?? sig}):\n${setupLog}`)); });
      holder.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const kids = childrenOf(holder.pid!);
    if (kids.length !== 1) throw new Error(`expected one namespace init under unshare ${holder.pid}, found ${kids.length}`);
    this.pid1 = kids[0]!;
    await this.startSshd(timeoutMs);
  }

  async startSshd(timeoutMs = 20_000): Promise<void> {
    if (this.sshd && this.sshd.exitCode === null && this.sshd.signalCode === null) throw new Error(`${this.name}: sshd already running`);
    const sshd = spawn('nsenter', ['-t', String(this.pid1), '-m', '-p', '--', '/usr/sbin/sshd', '-D', '-e', '-f', `${this.dir}/sshd_config`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH, LANG: 'C' },
    });
    this.sshd = sshd;
    const closed = new Promise<void>((resolve) => sshd.once('close', () => resolve()));
    sshd.stdout.on('data', (c: Buffer) => this.log.push(c));
    sshd.stderr.on('data', (c: Buffer) => this.log.push(c));
    try {
      await waitForListener(this.host, this.port, sshd, timeoutMs);
    } catch (e) {
      // An sshd that died has more to say (its config error, say) once its pipes drain.
      if (sshd.exitCode !== null || sshd.signalCode !== null) await closed;
      throw new Error(`sshd: ${(e as Error).message}\n--- sshd stderr ---\n${this.log}`);
    }
  }

  /** SIGKILL sshd (the listener under nsenter) and its per-connection sshd children. */
  async killSshd(): Promise<void> {
    const sshd = this.sshd;
    if (!sshd?.pid) return;
    for (const listener of childrenOf(sshd.pid)) {
      const victims = [listener, ...descendants(listener).filter((p) => p.comm.startsWith('sshd')).map((p) => p.pid)];
      for (const pid of victims) killQuietly(pid);
    }
    await exited(sshd);
  }

  async restartSshd(): Promise<void> {
    await this.killSshd();
    await this.startSshd();
  }

  exec(command: string, opts: RunOptions = {}): Promise<ExecResult> {
    if (!this.pid1) throw new Error(`${this.name}: not running`);
    return run('nsenter', ['-t', String(this.pid1), '-m', '-p', '--', '/bin/sh', '-c', command], opts);
  }

  /** Starts a long-running command (a probe loop, say); stop() kills it and returns its output. */
  background(command: string): { stop(): Promise<ExecResult>; done: Promise<ExecResult> } {
    let kill = () => {};
    const done = this.exec(command, { onStart: (stop) => { kill = stop; } });
    return { done, stop: () => { kill(); return done; } };
  }

  async stop(): Promise<void> {
    const waits = [this.holder, this.sshd].filter((c): c is ChildProcess => !!c).map(exited);
    killQuietly(this.holder?.pid);
    killQuietly(this.pid1);
    killQuietly(this.sshd?.pid);
    await Promise.all(waits);
  }

  /** For process 'exit', where nothing asynchronous runs any more. */
  killNow(): void {
    for (const pid of this.pids()) killQuietly(pid);
  }
}

/** Accepts TCP connections and never says a word: an sshd that hangs. */
export class BlackholeNode {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(readonly name: string, readonly host: string, readonly port: number) {}

  start(): Promise<void> {
    const server = createServer((sock) => {
      this.sockets.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => this.sockets.delete(sock));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`blackhole listener on ${this.host}:${this.port}: ${e.message}`)));
      server.listen(this.port, this.host, () => resolve());
    });
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
