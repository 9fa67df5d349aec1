import { describe, expect, it } from 'vitest'
import { parseAnonymousContext, parseAuditContext, runInAuditScope, currentAuditContext, currentAuditScope } from '../../producers/context/audit-context.js'
import { auditContextMiddleware } from '../../producers/context/express.js'
import { registerAuditContext } from '../../producers/context/fastify.js'
import { withAuditContext } from '../../producers/context/http.js'
import type { RequestContextOptions } from '../../producers/context/request-context.js'

const principal = () => ({ id: 'clerk.anna' })
const withKey = { config: { sessionHashKey: Buffer.alloc(32, 7) } }
const withoutKey = { config: {} }

type Options = RequestContextOptions<never>

/** Each adapter, made with `options`: what the application does once at start-up. */
const adapters: [string, (options: Options) => unknown][] = [
  ['withAuditContext', (o) => withAuditContext(() => {}, o as never)],
  ['auditContextMiddleware', (o) => auditContextMiddleware(o as never)],
  ['registerAuditContext', (o) => registerAuditContext({ addHook: () => undefined }, o as never)],
]

describe('a sessionId no read could carry fails when the adapter is made, not on every read (regression)', () => {
  it.each(adapters)('%s refuses sessionId with a producer that has no sessionHashKey, naming the key', (name, make) => {
    expect(() => make({ principal, sessionId: () => 's', producer: withoutKey })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(`${name}: sessionHashKey`) }))
  })

  it.each(adapters)('%s refuses sessionId without the producer that would hash it', (_name, make) => {
    expect(() => make({ principal, sessionId: () => 's' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', details: { issues: [{ key: 'producer', problem: 'required with sessionId' }] } }))
  })

  it.each(adapters)('%s accepts sessionId with a keyed producer, and no sessionId at all', (_name, make) => {
    expect(() => make({ principal, sessionId: () => 's', producer: withKey })).not.toThrow()
    expect(() => make({ principal })).not.toThrow()
  })
})

describe('anonymous scopes', () => {
  it('carry the request without passing for a principal', () => {
    const anonymous = parseAnonymousContext({ clientIp: '192.0.2.1', traceId: 'abc' })
    runInAuditScope(anonymous, () => {
      expect(currentAuditContext()).toBeUndefined()
      expect(currentAuditScope()).toEqual({ clientIp: '192.0.2.1', traceId: 'abc' })
    })
    // A validated anonymous context is not a validated principal's context.
    expect(() => parseAuditContext(anonymous as never)).toThrow(expect.objectContaining({ code: 'CONTEXT_INVALID' }))
    expect(() => parseAnonymousContext({ principal: { id: 'x' } } as never)).toThrow(expect.objectContaining({ code: 'CONTEXT_INVALID' }))
  })
})
