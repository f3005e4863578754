'use strict';
// The official Node.js PushConsumer (rocketmq-client-nodejs 1.0.8) on an
// orderly group (consumeMessageOrderly, EXPONENTIAL groupRetryPolicy,
// retryMaxTimes 2): the broker's Settings say fifo, the client consumes
// each queue's messages one at a time in order, retries a failure
// locally up to max attempts, then forwards it to the dead-letter queue
// (ForwardMessageToDeadLetterQueue) and goes on behind it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Producer, ConsumeResult } = require('rocketmq-client-nodejs');
const { endpoints, logger, topics, groups, simpleConsumer, receiveUntil, until } = require('../helpers');
const { pushConsumer, nothingLeft } = require('../pushlib');

test('FIFO PushConsumer: order kept per message group, failures retried in place, then dead-lettered', async () => {
  const group = groups.pushFifo;
  const consumed = new Map([[ 'A', [] ], [ 'B', [] ]]);
  const c = await pushConsumer(group, topics.pushFifo, m => {
    consumed.get(m.messageGroup).push(`${m.body}#${m.deliveryAttempt}`);
    return m.body.toString() === 'A2' ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
  });
  const expectA = [ 'A0#1', 'A1#1', 'A2#1', 'A2#2', 'A2#3', 'A3#1', 'A4#1' ];
  const expectB = [ 'B0#1', 'B1#1', 'B2#1', 'B3#1', 'B4#1' ];
  const ids = new Map();
  try {
    assert.equal(c.getPushConsumerSettings().isFifo(), true, 'the Settings reply marks the orderly group fifo');
    assert.equal(c.getRetryPolicy()?.getMaxAttempts(), 3, 'max attempts: retryMaxTimes 2 + 1');
    const p = new Producer({ endpoints, namespace: '', logger, topics: [ topics.pushFifo ] });
    await p.startup();
    try {
      for (let i = 0; i < 5; i++) {
        for (const g of [ 'A', 'B' ]) {
          const r = await p.send({ topic: topics.pushFifo, messageGroup: g, body: Buffer.from(`${g}${i}`) });
          ids.set(`${g}${i}`, r.messageId);
        }
      }
    } finally {
      await p.shutdown();
    }
    assert.ok(await until(() => consumed.get('A').length >= expectA.length && consumed.get('B').length >= expectB.length, 60000),
      `consumed: ${JSON.stringify([ ...consumed ])}`);
  } finally {
    await c.shutdown();
  }
  assert.deepEqual(consumed.get('A'), expectA);
  assert.deepEqual(consumed.get('B'), expectB);
  await nothingLeft(group, topics.pushFifo);

  // A2 is in the group's dead-letter queue, with its id and body.
  const dlq = await simpleConsumer('GID_NODE_DLQ_READER', `%DLQ%${group}`);
  try {
    const got = await receiveUntil(dlq, 1, 15000);
    assert.deepEqual(got.map(m => [ m.messageId, m.body.toString() ]), [[ ids.get('A2'), 'A2' ]]);
    await dlq.ack(got[0]);
  } finally {
    await dlq.shutdown();
  }
});
