'use strict';
// Tutorial 2, "Work queues": persistent tasks on the durable quorum queue
// task_queue, two workers with prefetch(1) that acknowledge a task after
// working on it for a while per dot. Fair dispatch: a worker busy with an
// unacknowledged task gets nothing more; a worker that dies without
// acknowledging gives its task to the other, redelivered.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, channel, Inbox, body, clean, kill } = require('../helpers');

const queue = 'task_queue';
const quorum = { durable: true, arguments: { 'x-queue-type': 'quorum' } };
// The tutorial works one second per dot; a tenth keeps the suite short.
const dotMs = 100;

before(() => clean({ queues: [queue] }));
after(() => clean({ queues: [queue] }));

// worker is worker.js: prefetch 1, manual acknowledgement after the
// task's dots. A first delivery of a task named "hold..." it keeps
// unacknowledged, as a worker stuck on a long task. Every delivery goes
// to received, every acknowledged task to done.
async function worker(name, received, done) {
  const conn = await connect();
  const ch = await channel(conn);
  await ch.assertQueue(queue, quorum);
  await ch.prefetch(1);
  const w = { name, conn, ch, unacked: 0, maxUnacked: 0 };
  await ch.consume(
    queue,
    (m) => {
      w.unacked++;
      w.maxUnacked = Math.max(w.maxUnacked, w.unacked);
      const task = { worker: name, body: body(m), redelivered: m.fields.redelivered };
      received.push(task);
      if (task.body.startsWith('hold') && !task.redelivered) return;
      const dots = task.body.split('.').length - 1;
      setTimeout(() => {
        w.unacked--;
        ch.ack(m);
        done.push(task);
      }, dots * dotMs);
    },
    { noAck: false },
  );
  return w;
}

// newTask is new_task.js: one persistent message per connection.
async function newTask(text) {
  const conn = await connect();
  const ch = await channel(conn);
  await ch.assertQueue(queue, quorum);
  ch.sendToQueue(queue, Buffer.from(text), { persistent: true });
  await ch.close();
  await conn.close();
}

test('tutorial 2: work queues', async () => {
  const received = new Inbox();
  const done = new Inbox();
  const a = await worker('A', received, done);
  const b = await worker('B', received, done);

  const tasks = ['a.', 'b..', 'c...', 'd....', 'e.....'];
  for (const t of tasks) await newTask(t);
  const finished = await done.take(tasks.length, 'tasks done');
  assert.deepEqual(finished.map((t) => t.body).sort(), tasks, 'every task done once');
  assert.ok(finished.every((t) => !t.redelivered), 'no task redelivered');
  // (Which worker got how many depends on timing: not checked.)
  assert.ok(a.maxUnacked <= 1, 'worker A never held two tasks');
  assert.ok(b.maxUnacked <= 1, 'worker B never held two tasks');
  await received.take(tasks.length, 'deliveries of the tasks');

  // One worker gets stuck on "hold.": every later task goes to the other.
  await newTask('hold.');
  const held = await received.next('hold.');
  assert.equal(held.body, 'hold.');
  assert.equal(held.redelivered, false);
  const [stuck, free] = held.worker === 'A' ? [a, b] : [b, a];
  const later = ['x.', 'y.', 'z.'];
  for (const t of later) await newTask(t);
  const laterDone = await done.take(later.length, 'tasks while one worker is stuck');
  assert.deepEqual(
    laterDone.map((t) => `${t.worker}:${t.body}`),
    later.map((t) => `${free.name}:${t}`),
  );
  assert.equal(stuck.unacked, 1);

  // The stuck worker dies without acknowledging: the other gets its task,
  // redelivered.
  await kill(stuck.conn);
  const again = await done.next('the dead worker\'s task');
  assert.deepEqual(again, { worker: free.name, body: 'hold.', redelivered: true });

  assert.equal((await free.ch.checkQueue(queue)).messageCount, 0);
  assert.equal(free.maxUnacked, 1, 'the other worker never held two tasks');
  await free.conn.close();
  assert.deepEqual(free.conn.errors, []);
});
