'use strict';
// Tutorial 5, "Topics": the topic exchange topic_logs and receivers with
// server-named queues bound by the tutorial's patterns: "#", "kern.*",
// "*.critical", "kern.*" and "*.critical" on one queue, Q1 "*.orange.*",
// Q2 "*.*.rabbit" and "lazy.#". Each queue gets exactly the keys its
// patterns match, once, however many of its bindings match.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, Inbox, body, clean } = require('../helpers');

const exchange = 'topic_logs';

before(() => clean({ exchanges: [exchange] }));
after(() => clean({ exchanges: [exchange] }));

const keys = [
  'kern.critical',
  'kern.info',
  'app.critical',
  '',
  'kern.a.b',
  'quick.orange.rabbit',
  'lazy.orange.elephant',
  'quick.orange.fox',
  'lazy.brown.fox',
  'lazy.pink.rabbit',
  'quick.brown.fox',
  'orange',
  'quick.orange.new.rabbit',
  'lazy.orange.new.rabbit',
];
// Published last, with these bodies: each queue gets one or both, so that
// what it got before them is all it gets.
const ends = [
  ['kern.critical', 'end kern'],
  ['end.orange.rabbit', 'end rabbit'],
];

// What each receiver must get, in order (body = routing key).
const want = {
  '#': [...keys, 'end kern', 'end rabbit'],
  'kern.*': ['kern.critical', 'kern.info', 'end kern'],
  '*.critical': ['kern.critical', 'app.critical', 'end kern'],
  'kern.* *.critical': ['kern.critical', 'kern.info', 'app.critical', 'end kern'],
  '*.orange.*': ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox', 'end rabbit'],
  '*.*.rabbit lazy.#': [
    'quick.orange.rabbit',
    'lazy.orange.elephant',
    'lazy.brown.fox',
    'lazy.pink.rabbit',
    'lazy.orange.new.rabbit',
    'end rabbit',
  ],
};

test('tutorial 5: topics', async () => {
  // receive_logs_topic.js, once per binding set.
  const conn = await connect();
  const receivers = {};
  for (const patterns of Object.keys(want)) {
    const ch = await channel(conn);
    await ch.assertExchange(exchange, 'topic', { durable: false });
    const q = await ch.assertQueue('', { exclusive: true });
    for (const p of patterns.split(' ')) await ch.bindQueue(q.queue, exchange, p);
    const inbox = new Inbox();
    await ch.consume(q.queue, inbox.push, { noAck: true });
    receivers[patterns] = { ch, inbox };
  }

  // emit_log_topic.js
  const emitter = await connect();
  const ech = await channel(emitter);
  await ech.assertExchange(exchange, 'topic', { durable: false });
  for (const k of keys) ech.publish(exchange, k, Buffer.from(k));
  for (const [k, b] of ends) ech.publish(exchange, k, Buffer.from(b));

  for (const [patterns, w] of Object.entries(want)) {
    const got = await receivers[patterns].inbox.take(w.length, `receiver bound with ${patterns}`);
    assert.deepEqual(got.map(body), w, `receiver bound with ${patterns}`);
  }
  for (const [patterns, r] of Object.entries(receivers)) {
    assert.deepEqual(r.inbox.items.map(body), [], `receiver bound with ${patterns} got more`);
    assert.deepEqual(r.ch.errors, []);
  }

  await emitter.close();
  await conn.close();
  assert.deepEqual([...conn.errors, ...emitter.errors, ...ech.errors], []);
});
