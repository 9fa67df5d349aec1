import { describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import type { AuditProducer } from '../../producers/audit-producer.js'
import { AuditProducerConfig, type AuditProducerConfigInput } from '../../producers/config.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'

const quiet = { logger: createLogger({ level: 'silent' }) }
const producerWith = (config: Partial<AuditProducerConfigInput>) => ({ config: AuditProducerConfig.parse({ service: 'ward-app', ...config }) }) as unknown as AuditProducer
const failClosed = { 'public.patients': { policy: 'fail-closed' as const } }

describe('hook options that would refuse every fail-closed read fail at start', () => {
  it('refuses a durableWithinMs no longer than the producer lingers before sending', () => {
    expect(() => createReadRecorder(producerWith({ lingerMs: 200 }), { tables: failClosed, durableWithinMs: 200 }, quiet)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', details: { issues: [{ key: 'durableWithinMs', problem: expect.stringContaining("the producer's lingerMs (200) = 200 ms") }] } }),
    )
  })

  it('refuses one the outbox could never meet while the broker is away', () => {
    const producer = producerWith({ lingerMs: 5, outbox: { dir: '/nonexistent', sendDeadlineMs: 1000 } })
    expect(() => createReadRecorder(producer, { tables: failClosed, durableWithinMs: 1000 }, quiet)).toThrow(/durableWithinMs: must be more than the producer's lingerMs \(5\) plus outbox\.sendDeadlineMs \(1000\) = 1005 ms, or every read of the fail-closed table public\.patients would be refused/)
    expect(() => createReadRecorder(producer, { tables: failClosed, durableWithinMs: 1006 }, quiet)).not.toThrow()
  })

  it('leaves fail-open tables alone, whose reads never wait', () => {
    expect(() => createReadRecorder(producerWith({ lingerMs: 500 }), { tables: { 'public.patients': {} }, durableWithinMs: 10 }, quiet)).not.toThrow()
  })
})
