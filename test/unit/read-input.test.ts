import { describe, expect, it } from 'vitest'
import { ReadInput } from '../../schemas/read-input.js'

const minimal = {
  principal: { id: 'alice' },
  resource: { database: 'crm', table: 'customers' },
  columns: ['id', 'email'],
  recordIds: ['1', 2, 3n],
}

describe('ReadInput', () => {
  it('names every invalid field by its path in one result', () => {
    const result = ReadInput.safeParse({
      ...minimal,
      principal: { id: '' },
      clientIp: '999.1.1.1',
      rowCount: -1,
      columns: [],
      shoeSize: 44,
    })
    expect(result.success).toBe(false)
    const issues = result.error!.issues
    const paths = issues.map((i) => i.path.join('.'))
    expect(paths).toEqual(expect.arrayContaining(['principal.id', 'clientIp', 'rowCount', 'columns']))
    const unknown = issues.find((i) => i.code === 'unrecognized_keys')
    expect(unknown && 'keys' in unknown ? unknown.keys : []).toEqual(['shoeSize'])
  })

  it('accepts a minimal read and fills the defaults', () => {
    const parsed = ReadInput.parse(minimal)
    expect(parsed.principal.type).toBe('user')
    expect(parsed.action).toBe('read')
    expect(parsed.outcome).toBe('success')
    expect(parsed.recordIdsComplete).toBe(true)
    expect(parsed.rowCount).toBeUndefined()
  })

  it('keeps explicit values over the defaults', () => {
    const parsed = ReadInput.parse({
      ...minimal,
      principal: { id: 'etl', type: 'service' },
      action: 'export',
      outcome: 'denied',
      recordIdsComplete: false,
    })
    expect([parsed.principal.type, parsed.action, parsed.outcome, parsed.recordIdsComplete]).toEqual(['service', 'export', 'denied', false])
  })

  it('rejects a rowCount smaller than the number of recordIds', () => {
    const result = ReadInput.safeParse({ ...minimal, rowCount: 2 })
    expect(result.success).toBe(false)
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual(['rowCount'])
  })

  it('accepts a rowCount equal to or larger than the number of recordIds', () => {
    expect(ReadInput.safeParse({ ...minimal, rowCount: 3 }).success).toBe(true)
    expect(ReadInput.safeParse({ ...minimal, rowCount: 1000, recordIdsComplete: false }).success).toBe(true)
  })

  it.each([
    ['an unknown principal type', { principal: { id: 'a', type: 'robot' } }, 'principal.type'],
    ['an unknown action', { action: 'delete' }, 'action'],
    ['a record id over 512 characters', { recordIds: ['x'.repeat(513)] }, 'recordIds.0'],
    ['a non-integer rowCount', { rowCount: 3.5 }, 'rowCount'],
    ['an empty purpose', { purpose: '' }, 'purpose'],
  ])('rejects %s at its path', (_label, patch, path) => {
    const result = ReadInput.safeParse({ ...minimal, ...patch })
    expect(result.success).toBe(false)
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain(path)
  })
  it('rejects a misspelled key inside principal instead of dropping it', () => {
    const result = ReadInput.safeParse({ ...minimal, principal: { id: 'alice', onBehalfof: 'bob' } })
    expect(result.success).toBe(false)
  })
})
