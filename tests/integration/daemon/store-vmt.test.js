// VMT's notifications (seed 000) in the application's own table: store/vmt-schema.sql (the
// fields of VMT's Notification documents) in a real PostgreSQL 15, sioc's notifications driver
// configured with store/vmt-statements.json (docs/store.md). What sioc stores, the app reads
// with its own SQL (toUser, fromUser, resourceType, resourceId, isTrashed); what the app
// writes, sioc lists; notifications:read trashes them in the app's table.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, createRoom, runSioc, writeConfig, ISO_RE,
} from '../lib/daemon.js';
import { ask } from '../lib/sio.js';
import { havePostgres, startPostgres } from '../lib/postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA = fs.readFileSync(path.join(here, '../store/vmt-schema.sql'), 'utf8');
const STATEMENTS = JSON.parse(fs.readFileSync(path.join(here, '../store/vmt-statements.json'), 'utf8'));
const EVENT = 'NEW_NOTIFICATION';

describe('VMT notifications on the app\'s own table', { skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)' }, () => {
  let pg;
  let dir;
  let config;
  let daemon;

  before(async () => {
    requireBin();
    pg = await startPostgres();
    await pg.rows(SCHEMA);
    dir = tempDir('vmt-pg');
    config = baseConfig(dir, {
      store: { driver: 'postgres', url: pg.url, statements: STATEMENTS },
      channels: { '/': { driver: 'notifications', auth: 'jwt' } },
    });
    daemon = await startDaemon(dir, config);
  });
  after(async () => {
    await daemon?.stop();
    await pg?.stop();
  });

  it('check-config prepares the statements against the table', async () => {
    const result = await runSioc(['check-config', writeConfig(dir, config, 'check.json')], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
  });

  it('an access request lands in "notifications" as VMT names it, pushed to the owner; read trashes it', async (t) => {
    const c = daemon.clients(t);
    const [owner, bob] = [makeUser('Olga'), makeUser('Bob')];
    const room = await createRoom(daemon, { name: 'Calculus', isPrivate: true, ownerId: owner.id });
    const ownerSocket = await connectAs(c, owner);
    const bobSocket = await connectAs(c, bob);
    const requested = await ask(bobSocket, 'room:requestAccess', room.id);
    assert.equal(requested.ok, true, JSON.stringify(requested));
    const [pushed] = await ownerSocket.inbox.take(EVENT);
    const stored = pushed.notification;
    assert.equal(stored.notificationType, 'requestAccess');
    assert.equal(stored.toUser, owner.id);
    assert.equal(stored.read, false);
    assert.match(stored.createdAt, ISO_RE);
    const rows = await pg.rows('SELECT * FROM public."notifications" WHERE "_id" = $1', [stored.id]);
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.deepEqual(
      [row.notificationType, row.toUser, row.fromUser, row.resourceType, row.resourceId, row.isTrashed],
      ['requestAccess', owner.id, bob.id, 'room', room.id, false],
    );
    assert.equal(row.createdAt.toISOString(), stored.createdAt);
    assert.equal(row.payload.requestId, requested.request.id);
    assert.equal(row.payload.fromUser.username, 'Bob Bobson');

    assert.deepEqual(await ask(ownerSocket, 'notifications:read', { ids: [stored.id] }), { ok: true, updated: 1 });
    const [trashed] = await pg.rows('SELECT "isTrashed" FROM public."notifications" WHERE "_id" = $1', [stored.id]);
    assert.equal(trashed.isTrashed, true);
    assert.deepEqual((await ask(ownerSocket, 'notifications:list', { unreadOnly: true })).notifications, []);
    const all = (await ask(ownerSocket, 'notifications:list', {})).notifications;
    assert.deepEqual(all.map((n) => [n.id, n.read]), [[stored.id, true]]);
  });

  it('what the app inserts, sioc lists newest first; POST /notifications rows are the app\'s', async (t) => {
    const dora = makeUser('Dora');
    await pg.rows('INSERT INTO public."notifications" ("_id", "notificationType", "toUser", "resourceType", "resourceId", payload, "createdAt", "updatedAt")'
      + ' VALUES ($1, $2, $3, $4, $5, $6, now(), now())', ['app-1', 'assignedNewRoom', dora.id, 'room', 'r7', { resourceType: 'room', resourceId: 'r7' }]);
    const posted = await daemon.apiOk('POST', '/notifications', { userId: dora.id, type: 'grantedAccess', payload: { resourceType: 'course', resourceId: 'c1' } }, 201);
    assert.deepEqual(posted, { id: posted.id, userId: dora.id, type: 'grantedAccess', payload: { resourceType: 'course', resourceId: 'c1' }, read: false, createdAt: posted.createdAt });
    const socket = await connectAs(daemon.clients(t), dora);
    const listed = (await ask(socket, 'notifications:list', {})).notifications;
    assert.deepEqual(listed.map((n) => [n.id, n.notificationType, n.resourceId]), [[posted.id, 'grantedAccess', 'c1'], ['app-1', 'assignedNewRoom', 'r7']]);
    assert.deepEqual(await ask(socket, 'notifications:read', 'all'), { ok: true, updated: 2 });
    const rows = await pg.rows('SELECT "_id", "isTrashed", "resourceType" FROM public."notifications" WHERE "toUser" = $1 ORDER BY seq', [dora.id]);
    assert.deepEqual(rows.map((r) => [r._id, r.isTrashed, r.resourceType]), [['app-1', true, 'room'], [posted.id, true, 'course']]);
  });
});
