// sioc on the application's own tables: StudyConnect's schema created by its own Sequelize
// models (store/models.js, sequelize + pg from npm) in a real PostgreSQL 15, sioc configured
// with the statements of docs/store.md (store/studyconnect-statements.json). The app's own
// queries (Message.findAll, User.findByPk, UserPresence.findByPk) see what sioc wrote; sioc
// sees users and messages the app created (a DM to a user who never connected, the profile
// of an {id}-only token, history); `sioc check-config` prepares every statement and names
// the config line of a bad one (syntax error, unknown parameter, wrong columns).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  requireBin, tempDir, baseConfig, startDaemon, connectAs, runSioc, writeConfig, ISO_RE,
} from '../lib/daemon.js';
import { ask, Clients } from '../lib/sio.js';
import { havePostgres, startPostgres } from '../lib/postgres.js';
import { defineModels } from '../store/models.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const STATEMENTS = JSON.parse(fs.readFileSync(path.join(here, '../store/studyconnect-statements.json'), 'utf8'));

/** The config text with statements, one per line, so that errors can name their line. */
function configText(dir, url, statements) {
  const config = baseConfig(dir, { store: { driver: 'postgres', url, statements: {} } });
  const text = JSON.stringify(config, null, 2);
  const lines = Object.entries(statements).map(([op, sql]) => `      ${JSON.stringify(op)}: ${JSON.stringify(sql)}`);
  return text.replace('"statements": {}', () => `"statements": {\n${lines.join(',\n')}\n    }`);
}

describe('StudyConnect on its own tables', { skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)' }, () => {
  let pg;
  let dir;
  let app;
  let daemon;
  let ann;
  let bob;
  let room;

  before(async () => {
    requireBin();
    pg = await startPostgres();
    dir = tempDir('studyconnect');
    app = defineModels(pg.url);
    await app.sequelize.sync({ force: true });
    ann = await app.User.create({ firstName: 'Ann', lastName: 'Annson', email: 'ann@example.test', role: 'student', avatar: 'a.png' });
    bob = await app.User.create({ firstName: 'Bob', lastName: 'Bobson', email: 'bob@example.test', role: 'tutor', avatar: null });
    room = await app.StudyRoom.create({ name: 'Algebra', description: 'Study group', isPublic: true, createdBy: ann.id });
    await room.addParticipant(ann.id, { through: { role: 'admin' } });
    writeConfig(dir, configText(dir, pg.url, STATEMENTS));
    daemon = await startDaemon(dir, configText(dir, pg.url, STATEMENTS));
  });
  after(async () => {
    await daemon?.stop();
    await app?.sequelize.close();
    await pg?.stop();
  });

  it('check-config prepares every statement against the database', async () => {
    const file = writeConfig(dir, configText(dir, pg.url, STATEMENTS), 'good.json');
    const result = await runSioc(['check-config', file], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
  });

  it('an {id}-only token gets its profile from Users; messages land in Messages, seen by Message.findAll', async (t) => {
    const socket = await connectAs(new Clients(daemon, t), { id: ann.id });
    const joined = await ask(socket, 'room:join', room.id);
    assert.equal(joined.ok, true, JSON.stringify(joined));
    const received = new Promise((resolve) => socket.once('message:received', resolve));
    const ack = await ask(socket, 'message:send', { roomId: room.id, text: 'hello from sioc' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const message = await received;
    assert.equal(typeof message.id, 'number');
    assert.match(message.createdAt, ISO_RE);
    assert.deepEqual(message.sender, { id: ann.id, firstName: 'Ann', lastName: 'Annson', role: 'student', avatar: 'a.png' });
    const rows = await app.Message.findAll({ where: { roomId: room.id }, include: [{ model: app.User, as: 'sender' }] });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, message.id);
    assert.equal(rows[0].text, 'hello from sioc');
    assert.equal(rows[0].type, 'room');
    assert.equal(rows[0].sender.firstName, 'Ann');
    assert.equal(rows[0].createdAt.toISOString(), message.createdAt);
    const presence = await app.UserPresence.findByPk(ann.id);
    assert.equal(presence.status, 'online');
    const user = await app.User.findByPk(ann.id);
    assert.equal(user.email, 'ann@example.test', 'sioc must not rewrite the app\'s users');
  });

  it('a DM to a registered user who never connected; history includes what the app wrote', async (t) => {
    const socket = await connectAs(new Clients(daemon, t), { id: ann.id });
    const ack = await ask(socket, 'dm:send', { recipientId: bob.id, text: 'hi Bob' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const dms = await app.Message.findAll({ where: { type: 'direct' } });
    assert.deepEqual(dms.map((m) => [m.senderId, m.recipientId, m.text]), [[ann.id, bob.id, 'hi Bob']]);
    const missing = await ask(socket, 'dm:send', { recipientId: 999999, text: 'nobody' });
    assert.equal(missing.ok, false);
    assert.equal(missing.error.message, 'Recipient not found');
    await app.Message.create({ roomId: room.id, senderId: bob.id, text: 'written by the app', type: 'room' });
    const history = await ask(socket, 'room:history', { roomId: room.id });
    assert.equal(history.ok, true, JSON.stringify(history));
    assert.deepEqual(history.messages.map((m) => [m.text, m.sender.id, m.sender.firstName]),
      [['hello from sioc', ann.id, 'Ann'], ['written by the app', bob.id, 'Bob']]);
    // With the app's statements the columns' SQL types decide: "senderId" INTEGER reads back
    // as a number, so the seed's msg.sender.id === currentUser.id holds on history too.
    assert.strictEqual(history.messages[0].sender.id === ann.id ? 'my-message' : 'other-message', 'my-message');
    const dmHistory = await ask(socket, 'dm:history', { userId: bob.id });
    assert.equal(dmHistory.ok, true, JSON.stringify(dmHistory));
    assert.deepEqual(dmHistory.messages.map((m) => [m.senderId, m.recipientId, m.text]), [[ann.id, bob.id, 'hi Bob']]);
  });

  it('check-config names the line of a bad statement: syntax, unknown parameter, wrong columns', async () => {
    const cases = [
      ['message_add', 'INSERT INTO "Messages" (text VALUES (:text)', /syntax error/],
      ['user_get', 'SELECT id, "firstName" FROM "Users" WHERE id = :userId', /unknown parameter :userId/],
      ['message_history', 'SELECT id, text FROM "Messages" WHERE "roomId" = (:roomId)::int', /returns no column "roomId" \(it returns: id,text\)/],
      ['room_get', 'SELECT * FROM "NoSuchTable" WHERE id = :id', /relation "NoSuchTable" does not exist/],
    ];
    for (const [op, sql, why] of cases) {
      const statements = { ...STATEMENTS, [op]: sql };
      const text = configText(dir, pg.url, statements);
      const line = text.split('\n').findIndex((l) => l.includes(`"${op}":`)) + 1;
      const file = writeConfig(dir, text, `bad-${op}.json`);
      const result = await runSioc(['check-config', file], { cwd: dir });
      assert.equal(result.code, 1, `${op}: ${result.stdout}${result.stderr}`);
      assert.ok(result.stderr.startsWith(`${file}:${line}: store.statements.${op}: `), `${op}: ${result.stderr}`);
      assert.match(result.stderr, why);
      const serve = await runSioc(['serve', '--config', file], { cwd: dir });
      assert.equal(serve.code, 1, `serve with a bad ${op}`);
      assert.match(serve.stderr, why);
    }
  });
});
