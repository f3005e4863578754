'use strict';
// Tutorial 7, "Publisher confirms", with amqplib's ConfirmChannel: the
// tutorial's three strategies (one message at a time, batches, callbacks
// as confirms arrive) into an exclusive server-named queue. On each
// channel every publish sequence number is acknowledged exactly once
// (a confirm with multiple set covers what is still outstanding up to
// its tag), none is nacked, and the queue then holds every message.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { connect, channel, within } = require('../helpers');

// Fewer than the tutorial's 50 000: the suite runs on a loaded CI.
const oneByOne = 1000;
const batch = 100;
const batched = 2000;
const async = 5000;

// confirmChannel opens a confirm channel that checks the broker's
// basic.ack/basic.nack frames: each sequence number once, ack only.
async function confirmChannel(conn) {
  const ch = await channel(conn, { confirm: true });
  // lowest is the least sequence number not yet confirmed.
  const c = { ch, published: 0, confirmed: new Set(), lowest: 1, problems: [] };
  const confirm = (kind) => (f) => {
    if (kind === 'nack') c.problems.push(`nack ${JSON.stringify(f)}`);
    const from = f.multiple ? c.lowest : f.deliveryTag;
    let fresh = 0;
    for (let tag = from; tag <= f.deliveryTag; tag++) {
      if (!c.confirmed.has(tag)) {
        c.confirmed.add(tag);
        fresh++;
      } else if (!f.multiple) {
        c.problems.push(`tag ${tag} confirmed again`);
      }
    }
    while (c.confirmed.has(c.lowest)) c.lowest++;
    if (fresh === 0 && f.multiple) c.problems.push(`multiple ${kind} up to ${f.deliveryTag} confirmed nothing new`);
    if (f.deliveryTag > c.published) c.problems.push(`${kind} of tag ${f.deliveryTag}, only ${c.published} published`);
  };
  ch.on('ack', confirm('ack'));
  ch.on('nack', confirm('nack'));
  c.publish = async (queue, text, cb) => {
    c.published++;
    if (!ch.sendToQueue(queue, Buffer.from(text), {}, cb)) await once(ch, 'drain');
  };
  c.check = (n) => {
    assert.deepEqual(c.problems, []);
    assert.equal(c.published, n);
    assert.equal(c.confirmed.size, n);
    for (let tag = 1; tag <= n; tag++) assert.ok(c.confirmed.has(tag), `tag ${tag} confirmed`);
  };
  return c;
}

test('tutorial 7: publisher confirms', async (t) => {
  const conn = await connect();
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });

  // One at a time: wait for each confirm before the next publish.
  let start = Date.now();
  const single = await confirmChannel(conn);
  for (let i = 0; i < oneByOne; i++) {
    await single.publish(queue, `single ${i}`);
    await within(single.ch.waitForConfirms(), `confirm of single ${i}`);
  }
  single.check(oneByOne);
  t.diagnostic(`${oneByOne} messages confirmed one by one in ${Date.now() - start} ms`);

  // In batches: wait for all confirms of a batch before the next.
  start = Date.now();
  const batches = await confirmChannel(conn);
  for (let i = 0; i < batched; i += batch) {
    for (let j = i; j < i + batch; j++) await batches.publish(queue, `batched ${j}`);
    await within(batches.ch.waitForConfirms(), `confirms of the batch from ${i}`);
  }
  batches.check(batched);
  t.diagnostic(`${batched} messages confirmed in batches of ${batch} in ${Date.now() - start} ms`);

  // Asynchronously: a callback per message, called once, with no error.
  start = Date.now();
  const handled = await confirmChannel(conn);
  const calls = new Array(async).fill(0);
  const errors = [];
  let outstanding = async;
  let allCalled;
  const called = new Promise((resolve) => {
    allCalled = resolve;
  });
  for (let i = 0; i < async; i++) {
    await handled.publish(queue, `async ${i}`, (err) => {
      calls[i]++;
      if (err) errors.push(`message ${i}: ${err.message}`);
      if (--outstanding === 0) allCalled();
    });
  }
  await within(called, 'callbacks of the asynchronous publishes', 60000);
  assert.deepEqual(errors, []);
  assert.ok(
    calls.every((n) => n === 1),
    'each callback called once',
  );
  handled.check(async);
  t.diagnostic(`${async} messages published and confirmed asynchronously in ${Date.now() - start} ms`);

  const total = oneByOne + batched + async;
  assert.equal((await ch.checkQueue(queue)).messageCount, total, 'the queue holds every confirmed message');
  assert.equal((await ch.deleteQueue(queue)).messageCount, total);
  await conn.close();
  assert.deepEqual([...conn.errors, ...ch.errors, ...single.ch.errors, ...batches.ch.errors, ...handled.ch.errors], []);
});
