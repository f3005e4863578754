'use strict';
// Shared by the tests under test/: the broker URL and small tools for
// waiting on deliveries and channel closes. The only input is AMQP_URL,
// so the same tests run against mqops's gateway (e2e
// TestAMQPNodeTutorials) and against a real RabbitMQ.
const { after } = require('node:test');
const amqp = require('amqplib');
const { setTimeout: sleep } = require('node:timers/promises');

const url = process.env.AMQP_URL;
if (!url) {
  throw new Error('AMQP_URL is not set (e.g. amqp://guest:guest@127.0.0.1:5672/): these tests run ' +
    'against a broker that e2e TestAMQPNodeTutorials starts, or any RabbitMQ');
}

// Generous: the broker may share a loaded machine with other suites.
const waitMs = 15000;

// The connections a failed test left open, closed after the file's
// tests so that node exits.
const open = new Set();
after(() => Promise.allSettled([...open].map((c) => c.close())));

// connect opens a connection that records its errors instead of throwing
// them from an 'error' event nobody listens to.
async function connect() {
  const conn = await amqp.connect(url);
  conn.errors = [];
  conn.on('error', (e) => conn.errors.push(e));
  open.add(conn);
  conn.on('close', () => open.delete(conn));
  return conn;
}

// channel opens a (confirm) channel on conn; ch.closed resolves when the
// channel closes, with the server's error or null.
async function channel(conn, { confirm = false } = {}) {
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  ch.errors = [];
  ch.closed = new Promise((resolve) => {
    ch.on('error', (e) => ch.errors.push(e));
    ch.on('close', () => resolve(ch.errors[0] || null));
  });
  return ch;
}

// within rejects with what if p does not settle in ms.
function within(p, what, ms = waitMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// Inbox queues what a consumer callback pushes for the test to take in
// order; push is bound so that it can be the callback itself.
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.push = this.push.bind(this);
  }

  push(m) {
    const w = this.waiters.shift();
    if (w) w(m);
    else this.items.push(m);
  }

  next(what, ms = waitMs) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    let waiter;
    const p = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(p, what, ms).catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }

  // take returns the next n items.
  async take(n, what, ms = waitMs) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.next(`${what} (${i + 1} of ${n})`, ms));
    return out;
  }
}

const body = (m) => m.content.toString();

// clean deletes queues and exchanges, so that a test starts from nothing
// (after a crashed run) and leaves a shared broker as it found it. A
// missing queue or exchange is fine (RabbitMQ answers delete-ok).
async function clean({ queues = [], exchanges = [] }) {
  const conn = await connect();
  try {
    const ch = await channel(conn);
    for (const q of queues) await ch.deleteQueue(q);
    for (const x of exchanges) await ch.deleteExchange(x);
    await ch.close();
  } finally {
    await conn.close();
  }
}

// kill drops conn's socket without a close handshake, as a crashed
// process would.
function kill(conn) {
  const gone = new Promise((resolve) => conn.once('close', resolve));
  // With an error, so that amqplib notices (a plain destroy() emits
  // neither 'end' nor 'error' on the socket).
  conn.connection.stream.destroy(new Error('socket dropped by the test'));
  return within(gone, 'connection close after the socket was dropped');
}

module.exports = { url, waitMs, connect, channel, within, Inbox, body, clean, kill, sleep };
