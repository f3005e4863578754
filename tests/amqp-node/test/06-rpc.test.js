'use strict';
// Tutorial 6, "RPC": a server consumes rpc_queue with prefetch 1 and
// answers fib(n) to each request's reply-to with its correlation id.
// The Node.js client takes its replies by direct reply-to: it consumes
// the pseudo-queue amq.rabbitmq.reply-to without acknowledgements and
// publishes with reply-to amq.rabbitmq.reply-to, not waiting for
// consume-ok; the server sees reply-to amq.rabbitmq.reply-to.<suffix>.
// The same with an exclusive server-named reply queue, as amqplib's own
// example client does.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, within, Inbox, body, clean } = require('../helpers');

const queue = 'rpc_queue';
const replyTo = 'amq.rabbitmq.reply-to';

before(() => clean({ queues: [queue] }));
after(() => clean({ queues: [queue] }));

function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

// server is rpc_server.js; requests lists the properties of what it got.
async function server() {
  const conn = await connect();
  const ch = await channel(conn);
  await ch.assertQueue(queue, { durable: false });
  await ch.prefetch(1);
  const requests = [];
  await ch.consume(queue, (m) => {
    requests.push({ n: body(m), replyTo: m.properties.replyTo, correlationId: m.properties.correlationId });
    const answer = fib(Number.parseInt(body(m), 10));
    ch.sendToQueue(m.properties.replyTo, Buffer.from(String(answer)), { correlationId: m.properties.correlationId });
    ch.ack(m);
  });
  return { conn, ch, requests };
}

// client is rpc_client.js: one connection asking fib(n) for each of ns
// with the reply-to its replyQueue function sets up; the replies in
// arrival order.
async function client(name, ns, replyQueue) {
  const conn = await connect();
  const ch = await channel(conn);
  const replies = new Inbox();
  const to = await replyQueue(ch, replies.push);
  for (const [i, n] of ns.entries()) {
    ch.sendToQueue(queue, Buffer.from(String(n)), { correlationId: `${name}-${i}`, replyTo: to });
  }
  const got = await replies.take(ns.length, `${name}'s replies`);
  await conn.close();
  assert.deepEqual([...conn.errors, ...ch.errors], []);
  return got.map((m) => `${m.properties.correlationId}=${body(m)}`).sort();
}

const want = (name, ns) => ns.map((n, i) => `${name}-${i}=${fib(n)}`).sort();

// directReplyTo consumes amq.rabbitmq.reply-to and, without waiting for
// consume-ok, lets the client publish.
function directReplyTo(ch, onReply) {
  ch.consume(replyTo, onReply, { noAck: true }).catch((e) => ch.errors.push(e));
  return replyTo;
}

// replyQueue declares an exclusive server-named queue and consumes it.
async function replyQueue(ch, onReply) {
  const q = await ch.assertQueue('', { exclusive: true });
  await ch.consume(q.queue, onReply, { noAck: true });
  return q.queue;
}

test(
  'tutorial 6: RPC with direct reply-to',
  async () => {
    const srv = await server();
    assert.deepEqual(await client('fib30', [30], directReplyTo), ['fib30-0=832040']);
    assert.equal(srv.requests.length, 1);
    assert.match(srv.requests[0].replyTo, /^amq\.rabbitmq\.reply-to\.\S+$/);

    // Two clients at once each get only their own replies.
    const [one, two] = await Promise.all([
      client('one', [10, 11, 12], directReplyTo),
      client('two', [20, 21, 22], directReplyTo),
    ]);
    assert.deepEqual(one, want('one', [10, 11, 12]));
    assert.deepEqual(two, want('two', [20, 21, 22]));
    const suffixes = new Set(srv.requests.slice(1).map((r) => r.replyTo));
    assert.equal(suffixes.size, 2, 'one reply-to per client connection');

    // The pseudo-queue is consumed without acknowledgements only, and a
    // publish naming it needs a consumer of it on its channel.
    const conn = await connect();
    const acking = await channel(conn);
    await assert.rejects(acking.consume(replyTo, () => {}, { noAck: false }), (e) => e.code === 406);
    assert.equal((await within(acking.closed, 'close after an acknowledging consume')).code, 406);
    const noConsumer = await channel(conn);
    noConsumer.sendToQueue(queue, Buffer.from('1'), { replyTo });
    const closed = await within(noConsumer.closed, 'close after a publish with no reply consumer');
    assert.equal(closed?.code, 406);
    assert.match(closed.message, /PRECONDITION_FAILED/);
    await conn.close();
    assert.deepEqual(conn.errors, []);

    await srv.conn.close();
    assert.equal(srv.requests.length, 7, 'the refused publish reached no server');
    assert.deepEqual([...srv.conn.errors, ...srv.ch.errors], []);
  },
);

test('tutorial 6: RPC with an exclusive reply queue', async () => {
  const srv = await server();
  const [one, two] = await Promise.all([client('one', [30, 1], replyQueue), client('two', [2, 3], replyQueue)]);
  assert.deepEqual(one, want('one', [30, 1]));
  assert.deepEqual(two, want('two', [2, 3]));
  assert.ok(srv.requests.every((r) => r.replyTo.startsWith('amq.gen-')));
  await srv.conn.close();
  assert.deepEqual([...srv.conn.errors, ...srv.ch.errors], []);
});
