// A real nginx (Debian's package) for the e2e test: a generated main config on a free port that
// includes the two files we ship in deploy/nginx/ unchanged, run in the foreground as a child
// process with its prefix, pid and temp paths in a temp folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireProgram } from '../../support/programs.ts';
import { freePort } from './http.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const SHIPPED = ['portcullis-auth.conf', 'portcullis-protect.conf'].map((f) => join(REPO, 'deploy/nginx', f));

/** `nginx -t` on the shipped example nginx.conf, copied with its includes to a temp folder. */
export function nginxConfigTest(): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-nginx-t-'));
  for (const f of ['nginx.conf', 'portcullis-auth.conf', 'portcullis-protect.conf'])
    copyFileSync(join(REPO, 'deploy/nginx', f), join(dir, f));
  const r = spawnSync(nginxBinary(), ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
    encoding: 'utf8',
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export function nginxBinary(): string {
  return requireProgram('nginx');
}

export interface RunningNginx {
  port: number;
  dir: string;
  /** nginx's stderr (error log), for failure messages and leak checks. */
  log: string[];
  stop(): Promise<void>;
}

export async function startNginx(opts: { portcullisPort: number; upstreamPort: number }): Promise<RunningNginx> {
  const bin = nginxBinary();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-nginx-'));
  for (const f of SHIPPED) copyFileSync(f, join(dir, f.slice(f.lastIndexOf('/') + 1)));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), mainConfig(dir, port, opts));
    const log: string[] = [];
    // master_process off: one process, no privilege drop to `nobody` when tests run as root, and
    // nothing left behind if it is killed.
    const child = spawn(
      bin,
      ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off; master_process off;'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => log.push(d));
    const up = await waitListening(port, child);
    if (up) return { port, dir, log, stop: () => stopChild(child) };
    await stopChild(child);
    const text = log.join('');
    // Another process took the port between freePort() and nginx's bind: try another one.
    if (attempt < 3 && text.includes('Address already in use')) continue;
    throw new Error(`nginx did not start:\n${text}`);
  }
}

function mainConfig(dir: string, port: number, o: { portcullisPort: number; upstreamPort: number }): string {
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    upstream portcullis { server 127.0.0.1:${o.portcullisPort}; keepalive 4; }
    upstream api { server 127.0.0.1:${o.upstreamPort}; }
    server {
        listen 127.0.0.1:${port};
        include ${dir}/portcullis-auth.conf;
        location / {
            include ${dir}/portcullis-protect.conf;
            proxy_pass http://api;
        }
    }
}
`;
}

async function waitListening(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
