'use strict';
// The official Node.js SimpleConsumer (rocketmq-client-nodejs 1.0.8):
// receive with an invisible duration and long polling, ack,
// changeInvisibleDuration, redelivery with deliveryAttempt + 1.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Producer } = require('rocketmq-client-nodejs');
const { Code } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');
const { endpoints, logger, topics, simpleConsumer, receiveUntil } = require('../helpers');

async function send(topic, bodies, tag) {
  const p = new Producer({ endpoints, namespace: '', logger, topics: [ topic ] });
  await p.startup();
  try {
    const ids = new Map();
    for (const b of bodies) {
      const r = await p.send({ topic, tag, body: Buffer.from(b) });
      ids.set(r.messageId, b);
    }
    return ids;
  } finally {
    await p.shutdown();
  }
}

test('receive and ack: every message once, then an empty receive returns []', async () => {
  const c = await simpleConsumer('GID_NODE_SIMPLE_ACK', topics.simple, 'TagS');
  try {
    // Nothing yet: the long poll ends with an empty list, not an error.
    assert.deepEqual(await c.receive(16, 15000), []);
    const ids = await send(topics.simple, Array.from({ length: 20 }, (_, i) => `m${i}`), 'TagS');
    const got = await receiveUntil(c, 20, 15000);
    assert.equal(got.length, 20);
    const seen = new Set();
    for (const m of got) {
      assert.ok(ids.has(m.messageId), `unknown message ${m.messageId}`);
      assert.ok(!seen.has(m.messageId), `${m.messageId} delivered twice while its lease was alive`);
      seen.add(m.messageId);
      assert.equal(m.body.toString(), ids.get(m.messageId));
      assert.equal(m.tag, 'TagS');
      assert.equal(m.deliveryAttempt, 1);
      assert.equal(m.corrupted, undefined);
      await c.ack(m);
    }
    assert.deepEqual(await c.receive(32, 15000), [], 'acked messages come back');
  } finally {
    await c.shutdown();
  }
});

test('changeInvisibleDuration: the message returns with attempt 2 and the new handle acks it', async () => {
  const c = await simpleConsumer('GID_NODE_SIMPLE_CHANGE', topics.simple, 'TagC');
  try {
    const ids = await send(topics.simple, [ 'change-me' ], 'TagC');
    const [ m ] = await receiveUntil(c, 1, 20000);
    assert.ok(ids.has(m.messageId));
    assert.equal(m.deliveryAttempt, 1);
    const first = m.receiptHandle;
    await c.changeInvisibleDuration(m, 1000);
    assert.ok(m.receiptHandle, 'changeInvisibleDuration returns a handle');

    const [ again ] = await receiveUntil(c, 1, 20000);
    assert.equal(again.messageId, m.messageId);
    assert.equal(again.deliveryAttempt, 2);
    assert.notEqual(again.receiptHandle, first);
    // The first delivery's handle is dead once the message came back.
    await assert.rejects(c.ack({ ...m, receiptHandle: first, endpoints: again.endpoints }),
      err => err.code === Code.INVALID_RECEIPT_HANDLE);
    await c.ack(again);
    assert.deepEqual(await c.receive(32, 15000), []);
  } finally {
    await c.shutdown();
  }
});

test('lease expiry: a message not acked comes back with attempt 2 and a new handle', async () => {
  const c = await simpleConsumer('GID_NODE_SIMPLE_EXPIRE', topics.simple, 'TagE');
  try {
    const ids = await send(topics.simple, [ 'expire-me' ], 'TagE');
    const [ m ] = await receiveUntil(c, 1, 1000);
    assert.ok(ids.has(m.messageId));
    assert.equal(m.deliveryAttempt, 1);
    const [ again ] = await receiveUntil(c, 1, 15000);
    assert.equal(again.messageId, m.messageId);
    assert.equal(again.deliveryAttempt, 2);
    assert.equal(again.body.toString(), 'expire-me');
    assert.notEqual(again.receiptHandle, m.receiptHandle);
    await c.ack(again);
  } finally {
    await c.shutdown();
  }
});
