'use strict';
// The official Node.js PushConsumer (rocketmq-client-nodejs 1.0.8; Go
// v5.1.2 has none): QueryAssignment, auto-renewed receives, nack
// (ChangeInvisibleDuration) on ConsumeResult.FAILURE.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { ConsumeResult } = require('rocketmq-client-nodejs');
const { topics, until } = require('../helpers');
const { send, pushConsumer, nothingLeft } = require('../pushlib');

test('ConsumeResult.FAILURE: the message is redelivered with deliveryAttempt 2', async () => {
  const group = 'GID_NODE_PUSH_RETRY';
  const attempts = new Map();
  const c = await pushConsumer(group, topics.pushRetry, m => {
    const seen = attempts.get(m.messageId) ?? [];
    seen.push(m.deliveryAttempt);
    attempts.set(m.messageId, seen);
    return m.deliveryAttempt === 1 ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
  });
  let ids;
  try {
    ids = await send(topics.pushRetry, Array.from({ length: 5 }, (_, i) => `retry-${i}`));
    assert.ok(await until(() => [ ...ids.keys() ].every(id => attempts.get(id)?.length >= 2), 60000),
      `attempts: ${JSON.stringify([ ...attempts ])}`);
  } finally {
    await c.shutdown();
  }
  for (const id of ids.keys()) {
    assert.deepEqual(attempts.get(id), [ 1, 2 ], `${ids.get(id)}: delivery attempts`);
  }
  await nothingLeft(group, topics.pushRetry);
});
