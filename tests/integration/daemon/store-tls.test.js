// The PostgreSQL store over TLS, as libpq offers it: a real PostgreSQL 15 started with ssl=on
// and a certificate the test makes with the openssl CLI (a CA of its own signs the server's,
// subjectAltName IP:127.0.0.1). sioc with sslmode=verify-full and sslrootcert in store.url
// connects over TLS (pg_stat_ssl says so) and stores messages; with another CA as sslrootcert
// `sioc serve` refuses to start: exit status 1 and libpq's reason (certificate verify failed).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, createRoom, runSioc, writeConfig,
} from '../lib/daemon.js';
import { ask, Clients } from '../lib/sio.js';
import { havePostgres, startPostgres } from '../lib/postgres.js';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
}

/** A CA (name.crt, name.key) in dir. */
function makeCa(dir, name) {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
  return path.join(dir, `${name}.crt`);
}

/** The server's certificate for 127.0.0.1, signed by the CA named ca. */
function makeServerCert(dir, ca) {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.cnf'], dir);
  return { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

describe('PostgreSQL store over TLS', { skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)' }, () => {
  let pg;
  let dir;
  let rightCa;
  let wrongCa;
  let daemon;

  before(async () => {
    requireBin();
    dir = tempDir('pg-tls');
    writeConfig(dir, 'subjectAltName = IP:127.0.0.1\n', 'san.cnf');
    rightCa = makeCa(dir, 'test-ca');
    wrongCa = makeCa(dir, 'other-ca');
    pg = await startPostgres({ tls: makeServerCert(dir, 'test-ca') });
  });
  after(async () => {
    await daemon?.stop();
    await pg?.stop();
  });

  it('sslmode=verify-full with the right CA: sioc connects over TLS and stores', async (t) => {
    const url = `${pg.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(rightCa)}`;
    daemon = await startDaemon(dir, baseConfig(dir, { store: { driver: 'postgres', url } }), { name: 'tls.json' });
    const room = await createRoom(daemon, { name: 'Secure' });
    const socket = await connectAs(new Clients(daemon, t), makeUser('Tess'));
    assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    const ack = await ask(socket, 'message:send', { roomId: room.id, text: 'over tls' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const [row] = await pg.rows('SELECT text FROM sioc.messages WHERE id = $1', [ack.message.id]);
    assert.equal(row.text, 'over tls');
    // The test's own pool connects without TLS: every TLS session on the server is sioc's.
    const [tls] = await pg.rows('SELECT count(*)::int AS n, min(version) AS version FROM pg_stat_ssl'
      + ' JOIN pg_stat_activity USING (pid) WHERE ssl AND datname = current_database()');
    assert.ok(tls.n >= 1, 'sioc is not on TLS');
    assert.match(tls.version, /^TLSv1\.[23]$/);
  });

  it('another CA as sslrootcert: sioc serve exits 1 with libpq\'s reason', async () => {
    const url = `${pg.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(wrongCa)}`;
    const file = writeConfig(dir, baseConfig(dir, { store: { driver: 'postgres', url } }), 'wrong-ca.json');
    const result = await runSioc(['serve', '--config', file], { cwd: dir });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /sioc: store: postgres sioc@127\.0\.0\.1:\d+\/sioc_test: cannot connect: .*certificate verify failed/);
  });

  it('sslmode=verify-full for a name the certificate does not carry: refused the same way', async () => {
    const url = `${pg.url.replace('127.0.0.1', 'localhost')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(rightCa)}`;
    const file = writeConfig(dir, baseConfig(dir, { store: { driver: 'postgres', url } }), 'wrong-name.json');
    const result = await runSioc(['serve', '--config', file], { cwd: dir });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /cannot connect: .*server certificate for "127\.0\.0\.1".* does not match host name "localhost"/);
  });
});
