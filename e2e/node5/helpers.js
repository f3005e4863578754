'use strict';
// Shared by the tests under test/: the broker's endpoint and the topics
// and groups that the Go driver (e2e/grpc node_test.go TestNodeClient)
// creates with bin/mqadmin before it runs `node --test`.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { setTimeout: sleep } = require('node:timers/promises');
const { SimpleConsumer } = require('rocketmq-client-nodejs');

const endpoints = process.env.MQ_GRPC_ENDPOINT;
if (!endpoints) {
  throw new Error('MQ_GRPC_ENDPOINT is not set: these tests run against a broker that ' +
    'e2e/grpc TestNodeClient starts (make test-e2e-grpc)');
}

// Must match nodeTopics and nodeGroups in e2e/grpc/node_test.go.
const topics = {
  normal: 'NodeNormal', // NORMAL
  fifo: 'NodeFifo', // FIFO
  delay: 'NodeDelay', // DELAY
  tx: 'NodeTx', // TRANSACTION
  simple: 'NodeSimple', // NORMAL
  push: 'NodePush', // NORMAL
  pushRetry: 'NodePushRetry', // NORMAL
  pushFifo: 'NodePushFifo', // FIFO
};
const groups = {
  // consumeMessageOrderly, EXPONENTIAL groupRetryPolicy, retryMaxTimes 2
  pushFifo: 'GID_NODE_PUSH_FIFO',
};

// logger is given to every client: the default one (egg-logger, a file
// under $HOME/logs/rocketmq) is closed by a client's shutdown() before
// its last log line, which then prints "log stream had been closed".
// This one appends synchronously to the same directory and has nothing
// to close.
const logFile = path.join(os.homedir(), 'logs', 'rocketmq', 'node-tests.log');
fs.mkdirSync(path.dirname(logFile), { recursive: true });
const line = level => (...args) =>
  fs.appendFileSync(logFile, `${new Date().toISOString()} ${level} [${process.pid}] ${util.format(...args)}\n`);
// Transaction calls logger.debug unconditionally.
const logger = { info: line('INFO'), warn: line('WARN'), error: line('ERROR'), debug: line('DEBUG') };

// The client's quick default for a receive: 3 s of long polling.
const awaitDuration = 3000;

async function simpleConsumer(group, topic, tag = '*') {
  const c = new SimpleConsumer({
    endpoints, namespace: '', logger, consumerGroup: group, awaitDuration,
    subscriptions: new Map([[ topic, tag ]]),
  });
  await c.startup();
  return c;
}

// receiveUntil receives until want messages arrived or timeoutMs passed.
async function receiveUntil(consumer, want, invisibleMs, timeoutMs = 30000) {
  const got = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < want && Date.now() < deadline) {
    got.push(...await consumer.receive(32, invisibleMs));
  }
  return got;
}

// until polls cond every 50 ms until it holds; false after timeoutMs.
async function until(cond, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

module.exports = { endpoints, logger, topics, groups, awaitDuration, simpleConsumer, receiveUntil, until, sleep };
