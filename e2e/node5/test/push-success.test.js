'use strict';
// The official Node.js PushConsumer (rocketmq-client-nodejs 1.0.8; Go
// v5.1.2 has none): QueryAssignment, auto-renewed receives, ack on ConsumeResult.SUCCESS.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { ConsumeResult } = require('rocketmq-client-nodejs');
const { topics, until } = require('../helpers');
const { send, pushConsumer, nothingLeft } = require('../pushlib');

test('ConsumeResult.SUCCESS: every message consumed exactly once, all acked', async () => {
  const group = 'GID_NODE_PUSH';
  const counts = new Map();
  const c = await pushConsumer(group, topics.push, m => {
    counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
    assert.equal(m.deliveryAttempt, 1);
    return ConsumeResult.SUCCESS;
  });
  let ids;
  try {
    ids = await send(topics.push, Array.from({ length: 30 }, (_, i) => `push-${i}`));
    assert.ok(await until(() => [ ...ids.keys() ].every(id => counts.has(id)), 60000),
      `consumed ${counts.size} of ${ids.size}`);
  } finally {
    await c.shutdown();
  }
  for (const [ id, n ] of counts) {
    assert.ok(ids.has(id), `unknown message ${id}`);
    assert.equal(n, 1, `${ids.get(id)} consumed ${n} times`);
  }
  assert.equal(counts.size, 30);
  await nothingLeft(group, topics.push);
});
