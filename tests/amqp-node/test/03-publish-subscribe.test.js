'use strict';
// Tutorial 3, "Publish/Subscribe": the fanout exchange logs; each
// receiver declares a server-named exclusive queue (amqplib asks for it
// durable, its default, which an exclusive queue takes as transient) and
// binds it. Every receiver gets every message; with no receiver a message
// vanishes silently; an exclusive queue is locked to its connection
// (405) and gone after it closes (404).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, within, Inbox, body, clean, sleep } = require('../helpers');

const exchange = 'logs';

before(() => clean({ exchanges: [exchange] }));
after(() => clean({ exchanges: [exchange] }));

// receiver is receive_logs.js.
async function receiver() {
  const conn = await connect();
  const ch = await channel(conn);
  await ch.assertExchange(exchange, 'fanout', { durable: false });
  const q = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(q.queue, exchange, '');
  const inbox = new Inbox();
  await ch.consume(q.queue, inbox.push, { noAck: true });
  return { conn, ch, queue: q.queue, inbox };
}

// passiveDeclareError declares queue passively on a new channel of conn
// and returns the code the channel was closed with.
async function passiveDeclareError(conn, queue) {
  const ch = await channel(conn);
  try {
    await ch.checkQueue(queue);
  } catch (e) {
    return e.code;
  }
  await ch.close();
  return 200;
}

test('tutorial 3: publish/subscribe', async () => {
  // emit_log.js before anyone listens: the message goes nowhere. (A
  // confirm channel, so that it is routed before the receivers bind.)
  const emitter = await connect();
  const ech = await channel(emitter, { confirm: true });
  await ech.assertExchange(exchange, 'fanout', { durable: false });
  ech.publish(exchange, '', Buffer.from('nobody listens'));
  await within(ech.waitForConfirms(), 'confirm of the message nobody listens to');

  const receivers = [await receiver(), await receiver()];
  for (const r of receivers) assert.match(r.queue, /^amq\.gen-/);
  assert.notEqual(receivers[0].queue, receivers[1].queue);

  const lines = ['info: one', 'warning: two', 'error: three'];
  for (const l of lines) ech.publish(exchange, '', Buffer.from(l));
  for (const [i, r] of receivers.entries()) {
    const got = await r.inbox.take(lines.length, `receiver ${i}`);
    assert.deepEqual(got.map(body), lines, `receiver ${i} gets every line, and not the one sent before it bound`);
    assert.ok(got.every((m) => m.fields.exchange === exchange && !m.fields.redelivered));
  }

  // Another connection may not use a live exclusive queue...
  const other = await connect();
  assert.equal(await passiveDeclareError(other, receivers[0].queue), 405);
  // ...and after its connection closes, it is gone.
  await receivers[0].conn.close();
  let code;
  for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(100)) {
    code = await passiveDeclareError(other, receivers[0].queue);
    if (code !== 405) break;
  }
  assert.equal(code, 404, 'passive declare of a closed receiver\'s queue');

  // The other receiver goes on.
  ech.publish(exchange, '', Buffer.from('still there'));
  assert.equal(body(await receivers[1].inbox.next('after the first receiver left')), 'still there');

  await within(other.close(), 'close');
  await receivers[1].conn.close();
  await emitter.close();
  for (const c of [emitter, other, ...receivers.map((r) => r.conn)]) assert.deepEqual(c.errors, []);
  assert.deepEqual(ech.errors, []);
});
