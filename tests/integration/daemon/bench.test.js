/* The bench channel's echo is a pass-through handler (issue 12): its arguments go back as the
 * bytes they came in when those are JSON.stringify's form already, and are parsed and encoded
 * again otherwise. Either way the answer must be Node's: socket.io's ack(...args) sends
 * JSON.stringify of what JSON.parse made of the arguments, so that is what each case expects. A
 * malformed packet still closes the connection, as in Node. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireBin, tempDir, baseConfig, startDaemon } from '../lib/daemon.js';
import { RawSession } from '../lib/sio.js';

/** Node's answer to `2<id><payload>` from a handler that calls ack(...args). */
function nodeAnswer(id, payload) {
  return `3${id}${JSON.stringify(JSON.parse(payload).slice(1))}`;
}

const PASSED_THROUGH = [
  '["echo"]',
  '["echo","hello",1,-2,0.5,-0.25,123456789012345,0.000001,{"a":[true,false,null],"b":{}},[]]',
  '["echo","h\u00e9llo \u{1F600} \u2028","\\n\\t\\u0001\\u001f\\"\\\\"]',
  '["echo",{"a":{"a":1},"b":2}]',
];

const ENCODED_AGAIN = [
  '[ "echo" , 1.0 , "x" ]',
  '["echo",1e3,0.1e1,1.50,-0,0.0000001,1234567890123456]',
  '["echo",12345678901234567890,1]',
  '["echo",{"b":1,"a":2,"b":3,"1":4}]',
  '["echo","\\/\\u0041\\u00e9\\ud83d\\ude00\\u001F\\u0008"]',
  '["e\\u0063ho","an escaped name"]',
];

const MALFORMED = ['["echo",]', '["echo"', '["echo","\\x"]', '["echo",01]', '["echo"] x', '["connect",1]'];

describe('bench channel: echo passes its arguments through', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('bench');
    daemon = await startDaemon(dir, baseConfig(dir, {
      channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  for (const transport of ['websocket', 'polling']) {
    it(`${transport}: answers exactly as Node, as bytes or encoded again`, async (t) => {
      const raw = await RawSession.open(daemon, transport);
      t.after(() => raw.stop());
      await raw.connect('/');
      let id = 0;
      for (const payload of [...PASSED_THROUGH, ...ENCODED_AGAIN]) {
        id++;
        await raw.send(`42${id}${payload}`);
        assert.equal(await raw.nextText(), nodeAnswer(id, payload), payload);
      }
      await raw.send('42["echo","no ack asked"]');
      await raw.send(`42${++id}["echo","after"]`);
      assert.equal(await raw.nextText(), `3${id}["after"]`);
    });
  }

  for (const payload of MALFORMED) {
    it(`refuses ${payload} by closing the connection`, async (t) => {
      const raw = await RawSession.open(daemon, 'websocket');
      t.after(() => raw.stop());
      await raw.connect('/');
      await raw.send(`421${payload}`);
      await raw.waitClosed(5000);
      assert.deepEqual(raw.queue, []);
    });
  }
});
