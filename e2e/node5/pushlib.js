'use strict';
// Shared by the PushConsumer tests (each in its own file, so that the
// runner runs them side by side: a PushConsumer's shutdown waits out its
// receive in flight, up to the broker's 20 s long polling).
const assert = require('node:assert/strict');
const { Producer, PushConsumer } = require('rocketmq-client-nodejs');
const { endpoints, logger, simpleConsumer } = require('./helpers');

async function send(topic, bodies) {
  const p = new Producer({ endpoints, namespace: '', logger, topics: [ topic ] });
  await p.startup();
  try {
    const ids = new Map();
    for (const b of bodies) {
      const r = await p.send({ topic, body: Buffer.from(b) });
      ids.set(r.messageId, b);
    }
    return ids;
  } finally {
    await p.shutdown();
  }
}

async function pushConsumer(group, topic, consume) {
  const c = new PushConsumer({
    endpoints, namespace: '', logger, consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]),
    messageListener: { consume },
  });
  await c.startup();
  return c;
}

// nothingLeft: after the push consumer is gone (its auto-renewed leases
// released), another consumer of the group finds nothing: every message
// was acked, none is left invisible or lost.
async function nothingLeft(group, topic) {
  const c = await simpleConsumer(group, topic);
  try {
    // Two long polls: a lease the gone client left ends within ~2 s.
    for (let i = 0; i < 2; i++) {
      assert.deepEqual((await c.receive(32, 15000)).map(m => m.body.toString()), [], 'messages left un-acked');
    }
  } finally {
    await c.shutdown();
  }
}

module.exports = { send, pushConsumer, nothingLeft };
