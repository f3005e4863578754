'use strict';
// The official Node.js producer (rocketmq-client-nodejs 1.0.8, plaintext):
// normal, FIFO, delay and transactional messages, checked on the
// consuming side with the same client's SimpleConsumer.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Producer, RpcClient, Endpoints } = require('rocketmq-client-nodejs');
const { TransactionResolution, ClientType, Code } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');
const { HeartbeatRequest } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb');
const { endpoints, logger, topics, simpleConsumer, receiveUntil } = require('../helpers');

async function startProducer(topic, checker) {
  const p = new Producer({ endpoints, namespace: '', logger, topics: [ topic ], checker });
  await p.startup();
  return p;
}

test('normal message: body, tag, keys and properties arrive as sent; shutdown ends the session', async () => {
  const p = await startProducer(topics.normal);
  const receipt = await p.send({
    topic: topics.normal, tag: 'TagA', keys: [ 'k1', 'k2' ],
    properties: new Map([[ 'color', 'red' ], [ 'n', '1' ]]),
    body: Buffer.from('hello from node'),
  });
  assert.match(receipt.messageId, /^[0-9A-F]{34}$/, 'a v1 message id');
  assert.ok(receipt.offset >= 0, `offset ${receipt.offset}`);

  const c = await simpleConsumer('GID_NODE_NORMAL', topics.normal);
  try {
    const got = await receiveUntil(c, 1, 15000);
    assert.equal(got.length, 1);
    const m = got[0];
    assert.equal(m.messageId, receipt.messageId);
    assert.equal(m.topic, topics.normal);
    assert.equal(m.body.toString(), 'hello from node');
    assert.equal(m.corrupted, undefined, 'the body digest matches');
    assert.equal(m.tag, 'TagA');
    assert.deepEqual(m.keys, [ 'k1', 'k2' ]);
    assert.equal(m.properties.get('color'), 'red');
    assert.equal(m.properties.get('n'), '1');
    assert.equal(m.deliveryAttempt, 1);
    assert.ok(m.receiptHandle, 'a receipt handle');
    assert.ok(m.bornTimestamp instanceof Date);
    await c.ack(m);
  } finally {
    await c.shutdown();
  }

  // shutdown() sends NotifyClientTermination: the broker forgets the
  // client, so a heartbeat under its id is no longer recognised.
  await p.shutdown();
  const rpc = new RpcClient(new Endpoints(endpoints), false);
  try {
    const res = await rpc.heartbeat(new HeartbeatRequest().setClientType(ClientType.PRODUCER), p.getRequestMetadata(), 3000);
    assert.equal(res.getStatus().getCode(), Code.UNRECOGNIZED_CLIENT_TYPE, res.getStatus().getMessage());
  } finally {
    rpc.close();
  }
});

test('FIFO messages: one message group arrives in send order with its group', async () => {
  const p = await startProducer(topics.fifo);
  const sent = [];
  try {
    for (let i = 0; i < 10; i++) {
      const r = await p.send({ topic: topics.fifo, messageGroup: 'order-1', body: Buffer.from(`fifo-${i}`) });
      sent.push(r.messageId);
    }
  } finally {
    await p.shutdown();
  }
  const c = await simpleConsumer('GID_NODE_FIFO_READ', topics.fifo);
  try {
    const got = await receiveUntil(c, 10, 15000);
    assert.deepEqual(got.map(m => m.messageId), sent, 'send order');
    for (const [ i, m ] of got.entries()) {
      assert.equal(m.body.toString(), `fifo-${i}`);
      assert.equal(m.messageGroup, 'order-1');
      await c.ack(m);
    }
  } finally {
    await c.shutdown();
  }
});

test('delay message: not delivered before its delivery time', async () => {
  const p = await startProducer(topics.delay);
  const delay = 3000;
  const before = Date.now();
  let receipt;
  try {
    receipt = await p.send({ topic: topics.delay, delay, body: Buffer.from('later') });
  } finally {
    await p.shutdown();
  }
  const c = await simpleConsumer('GID_NODE_DELAY', topics.delay);
  try {
    const got = await receiveUntil(c, 1, 15000);
    const at = Date.now();
    assert.equal(got.length, 1);
    const m = got[0];
    assert.equal(m.messageId, receipt.messageId);
    assert.equal(m.body.toString(), 'later');
    // The client sets delivery_timestamp = its clock + delay, after before.
    assert.ok(at >= before + delay, `received ${at - before} ms after the send, before its ${delay} ms delay`);
    await c.ack(m);
  } finally {
    await c.shutdown();
  }
});

test('transactions: commit delivers, rollback never, an orphan is checked back and committed', async () => {
  const checked = [];
  const p = await startProducer(topics.tx, {
    async check(view) {
      checked.push(view.body.toString());
      return view.body.toString() === 'orphan' ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK;
    },
  });
  try {
    const txSend = async body => {
      const tx = p.beginTransaction();
      const r = await p.send({ topic: topics.tx, body: Buffer.from(body) }, tx);
      assert.ok(r.transactionId, 'a transaction id');
      return [ tx, r ];
    };
    const [ rb ] = await txSend('rolled-back');
    await rb.rollback();
    const [ cm, committed ] = await txSend('committed');
    await cm.commit();
    // Neither committed nor rolled back: the broker asks the producer.
    const [ , orphan ] = await txSend('orphan');

    const c = await simpleConsumer('GID_NODE_TX', topics.tx);
    try {
      const got = await receiveUntil(c, 2, 15000, 60000);
      const bodies = new Map(got.map(m => [ m.body.toString(), m ]));
      assert.deepEqual([ ...bodies.keys() ].sort(), [ 'committed', 'orphan' ]);
      assert.equal(bodies.get('committed').messageId, committed.messageId);
      assert.equal(bodies.get('orphan').messageId, orphan.messageId);
      for (const m of got) await c.ack(m);
      // Nothing else: the rolled back message never comes.
      assert.deepEqual(await c.receive(32, 15000), []);
    } finally {
      await c.shutdown();
    }
    assert.ok(checked.includes('orphan'), `check-backs: ${checked}`);
    assert.ok(!checked.includes('committed') && !checked.includes('rolled-back'),
      `an ended transaction was checked back: ${checked}`);
  } finally {
    await p.shutdown();
  }
});
