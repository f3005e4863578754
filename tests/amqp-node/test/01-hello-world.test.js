'use strict';
// Tutorial 1, "Hello World!": a sender declares the durable quorum queue
// hello, publishes one message and closes its connection 500 ms later
// without confirms; a receiver started afterwards finds it waiting and
// consumes it with automatic acknowledgement.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, within, Inbox, body, clean, sleep } = require('../helpers');

const queue = 'hello';
const quorum = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

before(() => clean({ queues: [queue] }));
after(() => clean({ queues: [queue] }));

test('tutorial 1: hello world', async () => {
  // send.js
  const sender = await connect();
  const sch = await channel(sender);
  await sch.assertQueue(queue, quorum);
  sch.sendToQueue(queue, Buffer.from('Hello World!'));
  await sleep(500);
  await sender.close();
  assert.deepEqual(sender.errors, []);

  // receive.js: the same declaration is answered declare-ok, with the
  // message waiting.
  const receiver = await connect();
  const rch = await channel(receiver);
  const ok = await rch.assertQueue(queue, quorum);
  assert.equal(ok.queue, queue);
  assert.equal(ok.messageCount, 1, 'the message sent before the receiver started is waiting');
  assert.equal(ok.consumerCount, 0);

  // Declaring it again as not durable closes that channel with 406,
  // and not the connection.
  const other = await channel(receiver);
  await assert.rejects(other.assertQueue(queue, { durable: false }), (e) => {
    assert.equal(e.code, 406, e.message);
    assert.match(e.message, /PRECONDITION_FAILED/);
    return true;
  });
  assert.equal((await within(other.closed, 'close of the channel after 406')).code, 406);

  const inbox = new Inbox();
  await rch.consume(queue, inbox.push, { noAck: true });
  const m = await inbox.next('Hello World!');
  assert.equal(body(m), 'Hello World!');
  assert.equal(m.fields.redelivered, false);
  assert.equal(m.fields.exchange, '');
  assert.equal(m.fields.routingKey, queue);

  // Once: the next delivery is a message sent after it, not it again.
  rch.sendToQueue(queue, Buffer.from('second'));
  assert.equal(body(await inbox.next('second message')), 'second');
  assert.equal(inbox.items.length, 0);
  assert.equal((await rch.checkQueue(queue)).messageCount, 0);

  await receiver.close();
  assert.deepEqual(receiver.errors, []);
});
