import { PassThrough } from 'node:stream'
import kafkajs, { CompressionTypes } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { createKafka, isSettlingError, isUnknownTopicError, KafkaConnection, registerSnappyCodec, retryWhileSettling, topicMissingError } from '../../common/kafka.js'
import { componentLogger, createLogger, createTerminalLogger, silentLogger } from '../../common/logger.js'
import { RETRIABLE_CODES } from '../../common/error-codes.js'

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()))
  return { stream, text: () => text }
}

function lines(write: (stream: { write: (line: string) => void }) => void): string[] {
  const out: string[] = []
  write({ write: (line: string) => void out.push(line) })
  return out
}

describe('logs for people', () => {
  it('never binds component twice: a component inside another names itself subcomponent (the duplicated key of the consume log)', () => {
    const out = lines((sink) => {
      const root = createLogger({ level: 'info' }, sink)
      componentLogger(componentLogger(root, 'audit-producer'), 'kafkajs').info('inner')
      componentLogger(root, 'checkpoint-signer').info('outer')
    })
    for (const line of out) expect(line.match(/"component"/g)).toHaveLength(1)
    expect(JSON.parse(out[0]!)).toMatchObject({ component: 'audit-producer', subcomponent: 'kafkajs', msg: 'inner' })
    expect(JSON.parse(out[1]!)).toMatchObject({ component: 'checkpoint-signer', msg: 'outer' })
  })

  it('writes one readable line per event when pretty (a terminal): component, message, error code and message, no stack, redacted fields', async () => {
    const { stream, text } = capture()
    const logger = createTerminalLogger({ pretty: true, destination: stream, options: { level: 'info' } })
    componentLogger(logger, 'chain-writer').warn({ topic: 'readtrail.access', sessionId: 'raw-session' }, 'consumer crashed')
    logger.error({ err: topicMissingError('readtrail.access', ['127.0.0.1:19092']) }, 'audit producer cannot start')
    await new Promise((resolve) => setImmediate(resolve))
    const out = text().trimEnd().split('\n')
    expect(out).toHaveLength(2)
    expect(out[0]).toMatch(/WARN: chain-writer: consumer crashed \{"topic":"readtrail.access","sessionId":"\[redacted\]"\}$/)
    expect(out[1]).toContain('ERROR: audit producer cannot start: KAFKA_TOPIC_MISSING: Kafka topic readtrail.access does not exist')
    expect(text()).not.toContain('"stack"')
  })

  it('writes JSON when not pretty (a pipe or a file)', () => {
    const { stream, text } = capture()
    createTerminalLogger({ pretty: false, destination: stream, options: { level: 'info' } }).info({ n: 1 }, 'plain')
    expect(JSON.parse(text())).toMatchObject({ level: 30, n: 1, msg: 'plain' })
  })

  it('the SDK default logger writes nothing', () => {
    const logger = silentLogger()
    expect(logger.isLevelEnabled('fatal')).toBe(false)
  })
})

describe('kafkajs as a guest', () => {
  it('importing readtrail leaves kafkajs\'s codec table alone; registering Snappy fills only the empty slot, never a codec the host registered', () => {
    // This file imported common/kafka.ts above: the placeholder that throws is still there.
    const table = kafkajs.CompressionCodecs as Record<number, () => unknown>
    const placeholder = table[CompressionTypes.Snappy]!
    expect(() => placeholder()).toThrow(/not implemented/)
    const hostCodec = () => ({ compress: async (b: unknown) => b, decompress: async (b: unknown) => b })
    try {
      table[CompressionTypes.Snappy] = hostCodec
      registerSnappyCodec()
      expect(table[CompressionTypes.Snappy]).toBe(hostCodec)
      table[CompressionTypes.Snappy] = placeholder
      registerSnappyCodec()
      expect(table[CompressionTypes.Snappy]).not.toBe(placeholder)
    } finally {
      table[CompressionTypes.Snappy] = placeholder
    }
  })

  it('sends kafkajs\'s own lines (retries, connection errors) to debug only', () => {
    const connection = KafkaConnection.parse({ brokers: ['127.0.0.1:1'] })
    const out: string[] = []
    const kafka = createKafka(connection, createLogger({ level: 'debug' }, { write: (line: string) => void out.push(line) }))
    kafka.logger().namespace('BrokerPool').error('Failed to connect to seed broker, trying another broker from the list', { retryCount: 1, retryTime: 300 })
    kafka.logger().namespace('Consumer').warn('coordinator loading', {})
    expect(out).toHaveLength(2)
    for (const line of out) expect(JSON.parse(line)).toMatchObject({ level: 20, component: 'kafkajs' })
    expect(JSON.parse(out[0]!)).toMatchObject({ namespace: 'BrokerPool', kafkajs_level: 'ERROR', retryCount: 1 })

    const quiet: string[] = []
    const info = createKafka(connection, createLogger({ level: 'info' }, { write: (line: string) => void quiet.push(line) }))
    info.logger().namespace('BrokerPool').error('Failed to connect to seed broker', { retryCount: 5 })
    expect(quiet).toEqual([])
  })
})

describe('topic errors', () => {
  const settling = (type: string) => Object.assign(new Error('This server does not host this topic-partition'), { type })

  it('retries "does not host this topic-partition" and leader-not-available until it works', async () => {
    let calls = 0
    const value = await retryWhileSettling(async () => {
      calls += 1
      if (calls === 1) throw settling('UNKNOWN_TOPIC_OR_PARTITION')
      if (calls === 2) throw { name: 'KafkaJSNumberOfRetriesExceeded', cause: settling('LEADER_NOT_AVAILABLE') }
      return 'ready'
    }, Date.now() + 10_000)
    expect(value).toBe('ready')
    expect(calls).toBe(3)
  })

  it('gives up at the deadline, and at once on any other error', async () => {
    const started = Date.now()
    await expect(retryWhileSettling(() => Promise.reject(settling('UNKNOWN_TOPIC_OR_PARTITION')), Date.now() + 300)).rejects.toThrow(/does not host/)
    expect(Date.now() - started).toBeLessThan(2_000)
    let calls = 0
    await expect(
      retryWhileSettling(() => {
        calls += 1
        return Promise.reject(Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' }))
      }, Date.now() + 10_000),
    ).rejects.toThrow('denied')
    expect(calls).toBe(1)
  })

  it('names a missing topic with the commands that create it, retriable', () => {
    const cause = { name: 'KafkaJSNumberOfRetriesExceeded', cause: settling('UNKNOWN_TOPIC_OR_PARTITION') }
    expect(isUnknownTopicError(cause)).toBe(true)
    expect(isSettlingError(new Error('connect ECONNREFUSED'))).toBe(false)
    const err = topicMissingError('readtrail.access', ['kafka:9092'], cause)
    expect(err).toMatchObject({ code: 'KAFKA_TOPIC_MISSING', retriable: true, details: { topic: 'readtrail.access' } })
    expect(RETRIABLE_CODES.has('KAFKA_TOPIC_MISSING')).toBe(true)
    expect(err.message).toContain('`readtrail consume`')
    expect(err.message).toContain('kafka-topics.sh --bootstrap-server kafka:9092 --create --topic readtrail.access --partitions 3 --config max.message.bytes=4194304')
  })
})
