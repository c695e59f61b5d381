#!/usr/bin/env node
// kafkajs 2.2.4 round trip against a broker, driven by tests/kafkajs.rs.
//
// 1. admin.createTopics (CreateTopics v3), then waits until Metadata (v6) shows every partition
//    with a leader;
// 2. produces N keyed records with headers and explicit timestamps, acks=-1, in batches
//    (Produce v7, kafkajs's default partitioner: murmur2 like the Java client);
// 3. admin.fetchTopicOffsets (ListOffsets v3): the high watermarks must add up to N;
// 4. reads every partition from offset 0 with kafkajs's own Fetch v11 request and record-batch
//    decoder, through its internal cluster/broker objects: kafkajs has no assign(), and its
//    public consumer needs consumer groups (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//    OffsetFetch/OffsetCommit), which Sluice does not implement yet;
// 5. (--probe-group) tries the public group consumer for a few seconds and reports what happened,
//    without failing on it.
//
// Records follow tests/clients/common.py: key "k<i % keys>", value "v-<i>-" padded to
// --value-size, headers idx=<i> and run=<topic>, timestamp base_ts + i.
//
// Prints JSON lines; the last one is {"event": "result", "ok": true, ...}. Exits 1 on failure.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function parseArgs(argv) {
  const args = {
    bootstrap: null,
    topic: null,
    records: 1000,
    partitions: 3,
    keys: 97,
    valueSize: 100,
    batch: 100,
    probeGroup: false,
    timeout: 60,
  }
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`)
      return argv[++i]
    }
    switch (a) {
      case '--bootstrap': args.bootstrap = next(); break
      case '--topic': args.topic = next(); break
      case '--records': args.records = parseInt(next(), 10); break
      case '--partitions': args.partitions = parseInt(next(), 10); break
      case '--keys': args.keys = parseInt(next(), 10); break
      case '--value-size': args.valueSize = parseInt(next(), 10); break
      case '--batch': args.batch = parseInt(next(), 10); break
      case '--probe-group': args.probeGroup = true; break
      case '--timeout': args.timeout = parseFloat(next()); break
      default: fail(`unknown argument ${a}`)
    }
  }
  if (!args.bootstrap || !args.topic) fail('--bootstrap and --topic are required')
  return args
}

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

function fail(message, fields = {}) {
  emit('error', { ok: false, message, ...fields })
  process.exit(1)
}

const recordKey = (i, keys) => `k${i % keys}`
const recordValue = (i, size) => {
  const head = `v-${i}-`
  return head + 'x'.repeat(Math.max(0, size - head.length))
}
const indexOfValue = value => {
  const s = value.toString()
  if (!s.startsWith('v-')) throw new Error(`value ${JSON.stringify(s.slice(0, 40))} is not one of ours`)
  return parseInt(s.slice(2).split('-', 1)[0], 10)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function withTimeout(promise, ms, what) {
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}

const describe = e => (e && (e.type || e.name) ? `${e.type || e.name}: ${e.message}` : String(e))

async function createTopic(args, admin) {
  const t0 = Date.now()
  const created = await admin.createTopics({
    topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: 1 }],
    waitForLeaders: true,
    timeout: 30000,
  })
  const deadline = Date.now() + args.timeout * 1000
  for (;;) {
    let md = null
    try {
      md = await admin.fetchTopicMetadata({ topics: [args.topic] })
    } catch (e) {
      if (Date.now() > deadline) fail(`metadata for ${args.topic}: ${describe(e)}`)
    }
    const t = md && md.topics.find(x => x.name === args.topic)
    if (t && t.partitions.length === args.partitions && t.partitions.every(p => p.leader >= 0 && p.partitionErrorCode === 0)) {
      emit('created', { topic: args.topic, partitions: args.partitions, created, seconds: (Date.now() - t0) / 1000 })
      return
    }
    if (Date.now() > deadline) fail(`topic ${args.topic} not ready in metadata`, { metadata: t || null })
    await sleep(200)
  }
}

async function produce(args, kafka, baseTs) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const t0 = Date.now()
  const acked = new Map() // index -> { partition, offset }
  for (let start = 0; start < args.records; start += args.batch) {
    const end = Math.min(args.records, start + args.batch)
    const messages = []
    for (let i = start; i < end; i++) {
      messages.push({
        key: recordKey(i, args.keys),
        value: recordValue(i, args.valueSize),
        headers: { idx: String(i), run: args.topic },
        timestamp: String(baseTs + i),
      })
    }
    let meta
    try {
      meta = await producer.send({ topic: args.topic, acks: -1, timeout: 30000, messages })
    } catch (e) {
      fail(`produce of records ${start}..${end} failed: ${describe(e)}`)
    }
    // kafkajs answers one entry per partition written, with the base offset of this send's
    // records in that partition; records of one partition keep their order in the request.
    const perPartition = new Map()
    for (let i = start; i < end; i++) {
      const p = partitionOf(kafka, args, i)
      if (!perPartition.has(p)) perPartition.set(p, [])
      perPartition.get(p).push(i)
    }
    for (const m of meta) {
      if (m.errorCode !== 0) fail(`produce answered error ${m.errorCode}`, { meta: m })
      const idx = perPartition.get(m.partition) || []
      idx.forEach((i, n) => acked.set(i, { partition: m.partition, offset: BigInt(m.baseOffset) + BigInt(n) }))
    }
  }
  await producer.disconnect()
  if (acked.size !== args.records) fail(`acknowledged ${acked.size} of ${args.records} records`)
  const seconds = (Date.now() - t0) / 1000
  emit('produced', { records: args.records, seconds, acks: -1, base_ts: baseTs })
  return acked
}

// kafkajs's default partitioner (murmur2 of the key, like the Java client's), computed here to
// know which partition each record of a send went to.
let partitioner = null
function partitionOf(kafka, args, i) {
  if (!partitioner) {
    const { Partitioners } = require('kafkajs')
    partitioner = Partitioners.DefaultPartitioner()
  }
  const partitionMetadata = Array.from({ length: args.partitions }, (_, p) => ({ partitionId: p, leader: 1 }))
  return partitioner({ topic: args.topic, partitionMetadata, message: { key: recordKey(i, args.keys) } })
}

async function listOffsets(args, admin) {
  const offsets = await admin.fetchTopicOffsets(args.topic)
  const total = offsets.reduce((n, o) => n + (BigInt(o.high) - BigInt(o.low)), 0n)
  emit('offsets', { partitions: offsets.map(o => ({ partition: o.partition, low: o.low, high: o.high })) })
  if (total !== BigInt(args.records)) fail(`ListOffsets: high - low adds up to ${total}, produced ${args.records}`, { offsets })
  return offsets
}

// kafkajs's internal cluster (the one its admin, producer and consumer are built on): gives
// Broker objects whose fetch() sends kafkajs's own Fetch request and decodes the record batches.
function internalCluster(kafka) {
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  if (!sym) fail('kafkajs internals changed: no private:Kafka:createCluster on the Kafka object')
  return kafka[sym]({ isolationLevel: 1, allowAutoTopicCreation: false })
}

async function readAll(args, kafka, offsets, acked, baseTs) {
  const cluster = internalCluster(kafka)
  await cluster.connect()
  await cluster.addTargetTopic(args.topic)
  const t0 = Date.now()
  const seen = new Set()
  const keyPartition = new Map()
  let fetches = 0
  for (const { partition, high } of offsets) {
    const highWatermark = BigInt(high)
    let next = 0n
    let lastIndex = -1
    const deadline = Date.now() + args.timeout * 1000
    while (next < highWatermark) {
      if (Date.now() > deadline) fail(`partition ${partition}: stuck at offset ${next} of ${highWatermark}`)
      const leader = cluster.findLeaderForPartitions(args.topic, [partition])
      const nodeId = Object.keys(leader)[0]
      const broker = await cluster.findBroker({ nodeId })
      const resp = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 4 << 20,
        topics: [{ topic: args.topic, partitions: [{ partition, fetchOffset: next.toString(), maxBytes: 1 << 20 }] }],
      })
      fetches++
      const tp = resp.responses.find(r => r.topicName === args.topic)
      const pd = tp && tp.partitions.find(p => p.partition === partition)
      if (!pd) fail(`Fetch answered no data for ${args.topic}/${partition}`, { resp })
      if (pd.errorCode !== 0) fail(`Fetch ${args.topic}/${partition}@${next}: error ${pd.errorCode}`)
      if (BigInt(pd.highWatermark) !== highWatermark) {
        fail(`Fetch high watermark ${pd.highWatermark} differs from ListOffsets ${highWatermark}`)
      }
      for (const m of pd.messages) {
        const offset = BigInt(m.offset)
        if (offset < next) continue // a batch read from its start
        if (offset !== next) fail(`partition ${partition}: offset ${offset} where ${next} was expected`)
        const i = indexOfValue(m.value)
        const key = m.key ? m.key.toString() : null
        const value = m.value.toString()
        const headers = Object.fromEntries(Object.entries(m.headers || {}).map(([k, v]) => [k, v.toString()]))
        const where = `${args.topic}/${partition}@${offset}`
        if (key !== recordKey(i, args.keys)) fail(`${where}: key ${key} for record ${i}`)
        if (value !== recordValue(i, args.valueSize)) fail(`${where}: value of record ${i} differs`)
        if (headers.idx !== String(i) || headers.run !== args.topic || Object.keys(headers).length !== 2) {
          fail(`${where}: headers ${JSON.stringify(headers)} for record ${i}`)
        }
        if (BigInt(m.timestamp) !== BigInt(baseTs + i)) fail(`${where}: timestamp ${m.timestamp}, sent ${baseTs + i}`)
        const a = acked.get(i)
        if (!a || a.partition !== partition || a.offset !== offset) {
          fail(`${where}: record ${i} was acknowledged at ${a ? `${a.partition}@${a.offset}` : 'nothing'}`)
        }
        if (i <= lastIndex) fail(`${where}: record ${i} after record ${lastIndex} (order)`)
        if (seen.has(i)) fail(`${where}: record ${i} twice`)
        if (keyPartition.has(key) && keyPartition.get(key) !== partition) fail(`key ${key} in two partitions`)
        keyPartition.set(key, partition)
        seen.add(i)
        lastIndex = i
        next = offset + 1n
      }
    }
  }
  await cluster.disconnect()
  if (seen.size !== args.records) fail(`read ${seen.size} of ${args.records} records`)
  emit('consumed', { records: seen.size, fetches, seconds: (Date.now() - t0) / 1000, via: 'kafkajs Fetch v11 (internal broker API)' })
  return seen.size
}

// The public consumer: needs a group. Reports what happened within a few seconds; never fails.
async function probeGroup(args, kafka) {
  const consumer = kafka.consumer({
    groupId: `${args.topic}-probe`,
    retry: { retries: 0 },
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
  })
  let outcome = null
  let got = 0
  try {
    await withTimeout(consumer.connect(), 5000, 'consumer.connect')
    await withTimeout(consumer.subscribe({ topic: args.topic, fromBeginning: true }), 5000, 'consumer.subscribe')
    const crashed = new Promise(resolve => consumer.on(consumer.events.CRASH, e => resolve(e.payload.error)))
    const joined = new Promise(resolve => consumer.on(consumer.events.GROUP_JOIN, () => resolve(null)))
    await consumer.run({ eachMessage: async () => { got++ } })
    const err = await Promise.race([crashed, joined, sleep(8000).then(() => new Error('no group join within 8 s'))])
    if (err) outcome = { works: false, error: describe(err) }
    else {
      await sleep(2000)
      outcome = { works: true, messages_in_2s: got }
    }
  } catch (e) {
    outcome = { works: false, error: describe(e) }
  }
  try {
    await withTimeout(consumer.disconnect(), 5000, 'consumer.disconnect')
  } catch (e) {
    // the broker may not answer LeaveGroup; the probe has what it needs
  }
  emit('group_consumer', outcome)
  return outcome
}

async function main() {
  const args = parseArgs(process.argv)
  const kafka = new Kafka({
    clientId: 'sluice-kafkajs-test',
    brokers: [args.bootstrap],
    // SLUICE_KAFKAJS_LOG=debug shows every request kafkajs sends (with its API version).
    logLevel: logLevel[(process.env.SLUICE_KAFKAJS_LOG || 'nothing').toUpperCase()] ?? logLevel.NOTHING,
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(JSON.stringify({ level: label, namespace, ...log }) + '\n')
    },
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 100 },
  })
  const admin = kafka.admin()
  await admin.connect()
  const cluster = await admin.describeCluster()
  emit('connected', { brokers: cluster.brokers.map(b => `${b.nodeId}@${b.host}:${b.port}`), controller: cluster.controller })

  await createTopic(args, admin)
  const baseTs = Date.now() - 3600 * 1000
  const acked = await produce(args, kafka, baseTs)
  const offsets = await listOffsets(args, admin)
  const consumed = await readAll(args, kafka, offsets, acked, baseTs)
  await admin.disconnect()
  const group = args.probeGroup ? await probeGroup(args, kafka) : null
  emit('result', {
    ok: true,
    produced: args.records,
    consumed,
    partitions: args.partitions,
    group_consumer_works: group ? group.works : null,
  })
}

main().then(
  () => process.exit(0),
  e => fail(`unexpected: ${describe(e)}`, { stack: e && e.stack ? String(e.stack).split('\n').slice(0, 6) : null })
)
