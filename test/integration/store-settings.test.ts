import { describe, expect, it } from 'vitest'
import { withSettingsClause } from '../../store/settings-clause.js'
import { openTestStore } from '../helpers/store.js'

describe('query settings hold for their own query only', () => {
  it('a setting sent with one query does not stay set for the next, on either engine', async () => {
    const store = await openTestStore()
    const value = async (settings?: Record<string, number>) =>
      (await store.queryRows<{ v: unknown }>(`SELECT toString(getSetting('optimize_use_projections')) AS v -- trailing comment`, {}, settings))[0]?.v
    expect(await value()).toBe('true')
    expect(await value({ optimize_use_projections: 0 })).toBe('false')
    expect(await value()).toBe('true')
  })

  it('holds for every branch of a UNION', async () => {
    const store = await openTestStore()
    const rows = await store.queryRows<{ v: string }>(
      `SELECT toString(getSetting('compile_expressions')) AS v UNION ALL SELECT toString(getSetting('compile_expressions')) AS v`,
      {},
      { compile_expressions: 0 },
    )
    expect(rows.map((r) => r.v)).toEqual(['false', 'false'])
  })

  it('refuses a setting name that is not an identifier, and quotes string values', () => {
    expect(() => withSettingsClause('SELECT 1', { 'x = 1; DROP TABLE t; --': 1 } as never)).toThrow(/invalid setting name/)
    expect(withSettingsClause('SELECT 1', { log_comment: "it's" })).toBe("SELECT 1\nSETTINGS log_comment = 'it\\'s'")
    expect(withSettingsClause('SELECT 1', {})).toBe('SELECT 1')
  })
})
