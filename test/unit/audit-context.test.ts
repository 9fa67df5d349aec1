import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import {
  AuditContext,
  currentAuditContext,
  parseAuditContext,
  runWithAuditContext,
  runWithoutAuditContext,
} from '../../producers/context/audit-context.js'
import { AuditContextError } from '../../producers/context/errors.js'
import { LIMITS } from '../../schemas/access-event.js'
import { thrownBy } from '../helpers/thrown.js'

const alice = { principal: { id: 'alice' } }

describe('currentAuditContext', () => {
  it('is undefined outside any scope', () => {
    expect(currentAuditContext()).toBeUndefined()
  })

  it('returns the context inside the scope, with defaults filled, and undefined again after it', () => {
    const seen = runWithAuditContext({ ...alice, purpose: 'ticket-42', clientIp: '10.0.0.1' }, () => currentAuditContext())
    expect(seen).toEqual({ principal: { id: 'alice', type: 'user' }, purpose: 'ticket-42', clientIp: '10.0.0.1' })
    expect(currentAuditContext()).toBeUndefined()
  })
})

describe('runWithAuditContext', () => {
  it("returns fn's result, a promise included", async () => {
    expect(runWithAuditContext(alice, () => 42)).toBe(42)
    await expect(runWithAuditContext(alice, async () => 'done')).resolves.toBe('done')
  })

  it('names every invalid field in one CONTEXT_INVALID error and does not run fn', () => {
    let ran = false
    const err = thrownBy(AuditContextError, () =>
      runWithAuditContext(
        { principal: { id: '', type: 'robot' as 'user' }, clientIp: '999.1.1.1', traceId: '', shoeSize: 44 } as never,
        () => {
          ran = true
        },
      ),
    )
    expect(ran).toBe(false)
    expect(err.code).toBe('CONTEXT_INVALID')
    const keys = err.issues.map((i) => i.key)
    expect(keys).toEqual(expect.arrayContaining(['principal.id', 'principal.type', 'clientIp', 'traceId', 'shoeSize']))
    expect(err.details?.['issues']).toEqual(err.issues)
    expect(err.message).toContain('principal.id')
    expect(err.message).toContain('clientIp')
  })

  it('keeps the rejected values out of the error, since they may be personal data', () => {
    const err = thrownBy(AuditContextError, () =>
      runWithAuditContext({ principal: { id: 'alice@example.com', onBehalfOf: 'x'.repeat(LIMITS.name + 1) }, clientIp: 'alice-laptop.local' }, () => 0),
    )
    expect(err.issues.map((i) => i.key).sort()).toEqual(['clientIp', 'principal.onBehalfOf'])
    const text = JSON.stringify(err.toJSON())
    expect(text).not.toContain('alice')
    expect(text).not.toContain('xxxx')
  })

  it('names a missing principal and refuses a zone-id address', () => {
    const missing = thrownBy(AuditContextError, () => runWithAuditContext({} as never, () => 0))
    expect(missing.issues.map((i) => i.key)).toEqual(['principal'])
    const zoned = thrownBy(AuditContextError, () => runWithAuditContext({ ...alice, clientIp: 'fe80::1%eth0' }, () => 0))
    expect(zoned.issues.map((i) => i.key)).toEqual(['clientIp'])
  })

  it('applies the same limits as ReadInput', () => {
    expect(AuditContext.safeParse({ principal: { id: 'a'.repeat(LIMITS.name) } }).success).toBe(true)
    expect(AuditContext.safeParse({ principal: { id: 'a'.repeat(LIMITS.name + 1) } }).success).toBe(false)
    expect(AuditContext.safeParse({ ...alice, purpose: 'p'.repeat(LIMITS.text + 1) }).success).toBe(false)
    expect(AuditContext.safeParse({ ...alice, sessionId: '' }).success).toBe(false)
  })

  it('replaces the context for a nested scope and restores the outer one after it', async () => {
    await runWithAuditContext(alice, async () => {
      const inner = runWithAuditContext({ principal: { id: 'batch', type: 'service', onBehalfOf: 'alice' } }, async () => {
        await delay(2)
        return currentAuditContext()
      })
      expect(currentAuditContext()?.principal.id).toBe('alice')
      expect((await inner)?.principal).toEqual({ id: 'batch', type: 'service', onBehalfOf: 'alice' })
      expect(currentAuditContext()?.principal.id).toBe('alice')
    })
  })

  it('freezes the context deeply, so code in the scope cannot re-attribute later reads', () => {
    const input = { principal: { id: 'alice' }, purpose: 'support' }
    runWithAuditContext(input, () => {
      const context = currentAuditContext()!
      expect(Object.isFrozen(context)).toBe(true)
      expect(Object.isFrozen(context.principal)).toBe(true)
      expect(() => {
        ;(context.principal as { id: string }).id = 'mallory'
      }).toThrow(TypeError)
      // The caller's own object is not the one stored: changing it later changes nothing.
      input.principal.id = 'mallory'
      expect(currentAuditContext()?.principal.id).toBe('alice')
    })
    expect(Object.isFrozen(input)).toBe(false)
  })

  it('follows the scope across timers, setImmediate, Promise.all and queueMicrotask', async () => {
    await runWithAuditContext(alice, async () => {
      await delay(1)
      const seen = await Promise.all([
        new Promise((resolve) => setImmediate(() => resolve(currentAuditContext()?.principal.id))),
        new Promise((resolve) => setTimeout(() => resolve(currentAuditContext()?.principal.id), 1)),
        new Promise((resolve) => queueMicrotask(() => resolve(currentAuditContext()?.principal.id))),
        delay(1).then(() => currentAuditContext()?.principal.id),
      ])
      expect(seen).toEqual(['alice', 'alice', 'alice', 'alice'])
    })
  })

  it('keeps concurrent scopes apart', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `user-${i}`)
    const seen = await Promise.all(
      ids.map((id) =>
        runWithAuditContext({ principal: { id } }, async () => {
          await delay(Math.floor(Math.random() * 10))
          const a = currentAuditContext()?.principal.id
          await new Promise((resolve) => setImmediate(resolve))
          return [a, currentAuditContext()?.principal.id]
        }),
      ),
    )
    expect(seen).toEqual(ids.map((id) => [id, id]))
  })
})

describe('parseAuditContext', () => {
  it('returns a frozen context that runWithAuditContext stores as is', () => {
    const parsed = parseAuditContext(alice)
    expect(Object.isFrozen(parsed)).toBe(true)
    expect(parseAuditContext(parsed)).toBe(parsed)
    expect(runWithAuditContext(parsed, () => currentAuditContext())).toBe(parsed)
  })

  it('validates an equal but unparsed object again', () => {
    const lookalike = { principal: { id: '', type: 'user' as const } }
    expect(() => parseAuditContext(lookalike)).toThrow(AuditContextError)
  })
})

describe('runWithoutAuditContext', () => {
  it('hides an outer context from fn and what it schedules', async () => {
    await runWithAuditContext(alice, async () => {
      const seen = await runWithoutAuditContext(async () => {
        await delay(1)
        return currentAuditContext()
      })
      expect(seen).toBeUndefined()
      expect(currentAuditContext()?.principal.id).toBe('alice')
    })
  })
})
