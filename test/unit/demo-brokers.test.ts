import { describe, expect, it } from 'vitest'
import { demoBrokers } from '../../demo/local-kafka.js'

describe('the demo\'s broker', () => {
  it('says in one line that READTRAIL_KAFKA_BROKERS turns the demo\'s own broker off', () => {
    const said: string[] = []
    expect(demoBrokers(undefined, { READTRAIL_KAFKA_BROKERS: 'kafka.internal:9092' }, (l) => said.push(l))).toBe('kafka.internal:9092')
    expect(said).toEqual(["demo: using the Kafka broker at kafka.internal:9092 from READTRAIL_KAFKA_BROKERS, not starting the demo's own (unset READTRAIL_KAFKA_BROKERS to let the demo start one)"])
  })

  it('names --brokers when the flag chose the broker', () => {
    const said: string[] = []
    expect(demoBrokers('127.0.0.1:29092', { READTRAIL_KAFKA_BROKERS: 'ignored:1' }, (l) => said.push(l))).toBe('127.0.0.1:29092')
    expect(said).toHaveLength(1)
    expect(said[0]).toContain('from --brokers')
  })
})
