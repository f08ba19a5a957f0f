// A throwaway PostgreSQL 15 for daemon tests, through tests/lib/postgres.sh (initdb in a
// temporary directory, a free loopback port, removed by stop()). `pg` from npm queries it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { REPO_ROOT } from './daemon.js';

const SCRIPT = path.join(REPO_ROOT, 'tests', 'lib', 'postgres.sh');

/** True when the PostgreSQL server binaries are installed (else the suite is skipped). */
export function havePostgres() {
  try {
    execFileSync('bash', ['-c', 'ls /usr/lib/postgresql/*/bin/initdb'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export class Postgres {
  constructor(dir, url) {
    this.dir = dir;
    this.url = url;
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
    this.pool.on('error', () => {}); // idle clients see the restarts
  }

  /** One query on the test's own pool; the rows. */
  async rows(sql, params = []) {
    return (await this.pool.query(sql, params)).rows;
  }

  /** Fast shutdown and start again on the same port (the daemons' connections break). */
  restart() {
    execFileSync(SCRIPT, ['restart', this.dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000 });
  }

  /** Fast shutdown, keeping the data directory and the port for up(). */
  down() {
    execFileSync(SCRIPT, ['down', this.dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000 });
  }

  /** Starts the server that down() stopped, on the same port. */
  up() {
    execFileSync(SCRIPT, ['up', this.dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000 });
  }

  async stop() {
    await this.pool.end().catch(() => {});
    execFileSync(SCRIPT, ['stop', this.dir], { stdio: 'ignore', timeout: 60000 });
  }
}

/**
 * Starts a server; resolves to a Postgres. tls: {cert, key} (PEM files) turns TLS on
 * (ssl=on); the test's own pool still connects without it.
 */
export async function startPostgres({ tls } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sioc-pg-'));
  const env = tls ? { ...process.env, PG_SSL_CERT: tls.cert, PG_SSL_KEY: tls.key } : process.env;
  const url = execFileSync(SCRIPT, ['start', dir], { encoding: 'utf8', timeout: 60000, env }).trim();
  return new Postgres(dir, url);
}
