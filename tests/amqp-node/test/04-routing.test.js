'use strict';
// Tutorial 4, "Routing": the direct exchange direct_logs; receiver A
// binds its server-named queue with info, warning and error, receiver B
// with error only. Each gets exactly its severities, debug reaches
// nobody, and a binding made after a publish does not deliver it.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, Inbox, body, clean } = require('../helpers');

const exchange = 'direct_logs';

before(() => clean({ exchanges: [exchange] }));
after(() => clean({ exchanges: [exchange] }));

// receiver is receive_logs_direct.js with the given severities.
async function receiver(conn, severities) {
  const ch = await channel(conn);
  await ch.assertExchange(exchange, 'direct', { durable: false });
  const q = await ch.assertQueue('', { exclusive: true });
  for (const s of severities) await ch.bindQueue(q.queue, exchange, s);
  const inbox = new Inbox();
  await ch.consume(q.queue, inbox.push, { noAck: true });
  return { ch, queue: q.queue, inbox };
}

test('tutorial 4: routing', async () => {
  const conn = await connect();
  const a = await receiver(conn, ['info', 'warning', 'error']);
  const b = await receiver(conn, ['error']);

  // emit_log_direct.js, one severity after another; "error: end" comes
  // last to both receivers, so that what each got before it is all it
  // gets.
  const emitter = await connect();
  const ech = await channel(emitter);
  await ech.assertExchange(exchange, 'direct', { durable: false });
  const emit = (severity, text) => ech.publish(exchange, severity, Buffer.from(`${severity}: ${text}`));
  for (const s of ['info', 'warning', 'error', 'debug']) emit(s, 'Hello World!');
  emit('error', 'end');

  const got = (r, n, what) => r.inbox.take(n, what).then((ms) => ms.map((m) => `${m.fields.routingKey}|${body(m)}`));
  assert.deepEqual(await got(a, 4, 'receiver A'), [
    'info|info: Hello World!',
    'warning|warning: Hello World!',
    'error|error: Hello World!',
    'error|error: end',
  ]);
  assert.deepEqual(await got(b, 2, 'receiver B'), ['error|error: Hello World!', 'error|error: end']);

  // B binds debug now: the debug message published before stays lost.
  await b.ch.bindQueue(b.queue, exchange, 'debug');
  emit('debug', 'after the binding');
  emit('error', 'end again');
  assert.deepEqual(await got(b, 2, 'receiver B after binding debug'), [
    'debug|debug: after the binding',
    'error|error: end again',
  ]);
  assert.deepEqual(await got(a, 1, 'receiver A'), ['error|error: end again']);
  assert.equal(a.inbox.items.length + b.inbox.items.length, 0);

  await emitter.close();
  await conn.close();
  assert.deepEqual([...conn.errors, ...emitter.errors, ...ech.errors, ...a.ch.errors, ...b.ch.errors], []);
});
