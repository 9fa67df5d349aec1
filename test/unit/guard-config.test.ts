import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../common/config.js'
import { budgetKey } from '../../producers/guard/budget-key.js'
import { AuditHookConfig } from '../../producers/hooks/hook-config.js'
import { thrown } from '../helpers/thrown.js'

const tables = { 'public.applicants': {}, 'public.addresses': {} }
const budget = { tables: ['public.applicants'], limits: { user: { perMinute: 100, perHour: 1000 } } }
const parse = (guard: unknown) => parseConfig(AuditHookConfig, { tables, guard }, 'audit hook')
const issues = async (guard: unknown) => ((await thrown(Promise.resolve().then(() => parse(guard)))) as { code: string; details: { issues: { key: string; problem: string }[] } })

describe('guard configuration', () => {
  it('fills defaults and freezes: refuse, fail-open, throttleMaxMs 2000, in-process, one alert a minute', () => {
    const config = parse({ budgets: { applicants: budget } })
    expect(config.guard).toEqual({
      budgets: { applicants: { ...budget, action: 'refuse', onStoreDown: 'fail-open' } },
      allow: [],
      throttleMaxMs: 2000,
      alertIntervalMs: 60_000,
      maxPrincipals: 100_000,
    })
    expect(Object.isFrozen(config.guard!.budgets['applicants']!.limits)).toBe(true)
    const redis = parse({ budgets: { applicants: budget }, redis: { url: 'redis://127.0.0.1:6379' } })
    expect(redis.guard!.redis).toEqual({ url: 'redis://127.0.0.1:6379', keyPrefix: 'readtrail:guard:', timeoutMs: 50, maxInFlight: 1000 })
  })

  it('reports every bad key in one error, naming the key and the limit it broke', async () => {
    const err = await issues({
      budgets: {
        typo: { tables: ['public.applicant'], limits: { user: { perMinute: 10 } } },
        empty: { tables: ['public.applicants'], limits: {} },
        inverted: { tables: ['public.applicants'], limits: { user: { perMinute: 100, perHour: 10 } }, action: 'block' },
        negative: { tables: ['public.applicants'], limits: { robot: { perMinute: -1 } }, onStoreDown: 'maybe' },
      },
      throttleMaxMs: 600_000,
      redis: { url: 'http://127.0.0.1:6379', timeoutMs: 0, keyPrefix: 'rt:{x}:' },
      surprise: true,
    })
    expect(err.code).toBe('CONFIG_INVALID')
    const keys = err.details.issues.map((i) => i.key).sort()
    expect(keys).toEqual(
      [
        'guard.budgets.empty.limits',
        'guard.budgets.inverted.action',
        'guard.budgets.inverted.limits.user.perMinute',
        'guard.budgets.negative.limits',
        'guard.budgets.negative.limits.robot',
        'guard.budgets.negative.onStoreDown',
        'guard.redis.keyPrefix',
        'guard.redis.timeoutMs',
        'guard.redis.url',
        'guard.surprise',
        'guard.throttleMaxMs',
      ].sort(),
    )
    // A budget naming a table the hooks do not watch would count nothing: refused, naming the table.
    const typo = await issues({ budgets: { typo: { tables: ['public.applicant'], limits: { user: { perMinute: 10 } } }, inverted: { tables: ['public.applicants'], limits: { user: { perMinute: 100, perHour: 10 } } } } })
    expect(typo.details.issues).toEqual([
      { key: 'guard.budgets.inverted.limits.user.perMinute', problem: 'perMinute cannot be more than perHour' },
      { key: 'guard.budgets.typo.tables.0', problem: expect.stringContaining('public.applicant is not one of the sensitive tables') as unknown as string },
    ].sort((a, b) => a.key.localeCompare(b.key)))
  })

  it('refuses hostile sizes: huge limits, huge names, too many allowlist entries', async () => {
    const err = await issues({
      budgets: { ['b'.repeat(300)]: budget, huge: { tables: ['public.applicants'], limits: { user: { perMinute: 1e12 } } } },
      allow: Array.from({ length: 10_001 }, (_, i) => ({ id: `svc-${i}` })),
    })
    const keys = err.details.issues.map((i) => i.key)
    expect(keys).toContain('guard.allow')
    expect(keys).toContain('guard.budgets.huge.limits.user.perMinute')
    expect(keys.some((k) => k.startsWith('guard.budgets.bbbb'))).toBe(true)
  })
})

describe('budget keys', () => {
  it('never carry the principal id: Redis key injection through `:`, `{`, `*`, newlines or sheer size reaches nothing', () => {
    const hostile = ['a:b', '{slot}', 'x}{y', '*', 'id\r\nFLUSHALL\r\n', 'ü'.repeat(256), '']
    const keys = hostile.map((id) => budgetKey('readtrail:guard:', 'applicants', { type: 'user', id }))
    for (const key of keys) expect(key).toMatch(/^readtrail:guard:\{[A-Za-z0-9_-]{43}\}$/)
    expect(new Set(keys).size).toBe(hostile.length)
  })

  it('keeps apart parts that concatenate the same, principal types, budgets and anonymous client addresses', () => {
    const k = (budget: string, type: string, id: string, clientIp?: string) => budgetKey('p:', budget, { type, id, clientIp })
    const all = [k('a:b', 'user', 'c'), k('a', 'user', 'b:c'), k('a', 'service', 'b:c'), k('a', 'user', 'b:c', '10.0.0.1'), k('a', 'user', 'b:c', '10.0.0.2')]
    expect(new Set(all).size).toBe(all.length)
  })
})
