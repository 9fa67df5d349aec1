import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { getSavedQuery } from '../../queries/catalog.js'
import { QueryError } from '../../queries/errors.js'
import { instant, list, principalId, toChDateTime, whole } from '../../queries/params.js'
import { parseQueryParams } from '../../queries/saved-query.js'
import { bindSubjectKeys, NO_SUBJECT_KEYS, SubjectKeyEntries, SubjectKeysText } from '../../queries/subject-keys.js'
import { thrownBy } from '../helpers/thrown.js'

/** The messages of a failed parse, as `path: message`. */
function problems(schema: z.ZodType, value: unknown): string[] {
  const parsed = schema.safeParse(value)
  expect(parsed.success, `${JSON.stringify(value)} should be refused`).toBe(false)
  return parsed.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

describe('instant', () => {
  it.each([
    ['2026-11-27T10:00:00Z', '2026-11-27T10:00:00.000Z'],
    ['2026-11-27T10:00:00.123456Z', '2026-11-27T10:00:00.123Z'],
    // An offset is honoured; text without one is UTC, not the machine's zone.
    ['2026-11-27T10:00:00+01:00', '2026-11-27T09:00:00.000Z'],
    ['2026-11-27T10:00:00', '2026-11-27T10:00:00.000Z'],
    ['2026-11-27T10:00', '2026-11-27T10:00:00.000Z'],
    ['2026-11-27', '2026-11-27T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
  ])('reads %s as %s', (text, iso) => {
    expect(instant.parse(text).toISOString()).toBe(iso)
  })

  it('passes a Date through', () => {
    const d = new Date('2026-11-27T10:00:00Z')
    expect(instant.parse(d)).toEqual(d)
  })

  it.each(['', 'yesterday', '2026-02-30', '2026-02-30T00:00:00Z', '2026-11-27T24:00:00Z', '2026-11-27 10:00:00', '2026-11-27T10:00:00+01', 1764237600000])(
    'refuses %j rather than guessing',
    (value) => {
      expect(instant.safeParse(value).success).toBe(false)
    },
  )

  it('refuses an invalid Date object', () => {
    expect(instant.safeParse(new Date('nonsense')).success).toBe(false)
  })

  it('binds as ClickHouse DateTime64 text, open ends as the far past and far future', () => {
    expect(toChDateTime(instant.parse('2026-11-27T10:00:00.5+00:00'), 'min')).toBe('2026-11-27 10:00:00.500000')
    // Microseconds as given: an occurred_at copied from an answer bounds exactly.
    expect(toChDateTime(instant.parse('2026-11-27T10:00:00.000001Z'), 'min')).toBe('2026-11-27 10:00:00.000001')
    expect(toChDateTime(instant.parse('2026-11-27T10:00:00.123456+01:00'), 'min')).toBe('2026-11-27 09:00:00.123456')
    expect(toChDateTime(undefined, 'min')).toBe('1970-01-01 00:00:00.000000')
    expect(toChDateTime(undefined, 'max')).toBe('2299-12-31 00:00:00.000000')
  })
})

describe('list', () => {
  const principals = list(principalId, 3)

  it('takes an array, or comma-separated text with blanks and empty items dropped', () => {
    expect(principals.parse(['clerk.marta'])).toEqual(['clerk.marta'])
    expect(principals.parse(' clerk.marta , ,batch.job ')).toEqual(['clerk.marta', 'batch.job'])
    expect(principals.parse('')).toEqual([])
  })

  it('checks every item, naming its position', () => {
    expect(problems(principals, ['ok', '', 7])).toEqual(['1: Too small: expected string to have >=1 characters', '2: Invalid input: expected string, received number'])
  })

  it('caps the number of values, from text as from arrays', () => {
    expect(problems(principals, 'a,b,c,d')).toEqual([': at most 3 values'])
    expect(problems(principals, ['a', 'b', 'c', 'd'])).toEqual([': at most 3 values'])
    expect(principals.parse('a,b,c')).toEqual(['a', 'b', 'c'])
  })

  it('refuses what is neither text nor an array', () => {
    expect(principals.safeParse(5).success).toBe(false)
    expect(principals.safeParse({ 0: 'a' }).success).toBe(false)
  })
})

describe('whole', () => {
  const days = whole(1, 366)

  it('takes a number or its decimal text', () => {
    expect(days.parse(7)).toBe(7)
    expect(days.parse('7')).toBe(7)
    expect(days.parse('007')).toBe(7)
  })

  it.each(['', ' 7', '7.0', '-1', '1e2', '0x10', 'seven', 7.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses %j', (value) => {
    expect(days.safeParse(value).success).toBe(false)
  })

  it('names the bound a number broke', () => {
    expect(problems(days, 0)).toEqual([': Too small: expected number to be >=1'])
    expect(problems(days, '367')).toEqual([': Too big: expected number to be <=366'])
  })

  // Regression: zod 4 reports a union none of whose options
  // matched as just "Invalid input", so the message written for text that
  // is not a number never reaches the user (nor does positive()'s
  // 'must be a number'); `--param baseline_days=seven` says only
  // "baseline_days: Invalid input".
  it('says why text is not a whole number', () => {
    expect(problems(days, 'seven')).toEqual([': must be a whole number'])
  })
})

describe('SubjectKeysText', () => {
  it('reads database.table=id and database.table=keyN entries', () => {
    const keys = SubjectKeysText.parse('registry.applicants=id, practice.patients=id,practice.treatments=key1,lab.results=key12')
    expect([...keys]).toEqual([
      ['registry.applicants', 0],
      ['practice.patients', 0],
      ['practice.treatments', 1],
      ['lab.results', 12],
    ])
  })

  it('reads database.schema.table, as a PostgreSQL hook records a schema-qualified table', () => {
    expect([...SubjectKeysText.parse('clinic.public.patients=id')]).toEqual([['clinic.public.patients', 0]])
    expect(SubjectKeyEntries.parse([['clinic.public.patients', 0]]).get('clinic.public.patients')).toBe(0)
  })

  it('reads empty text, and blank entries, as no keys', () => {
    expect(SubjectKeysText.parse('').size).toBe(0)
    expect([...SubjectKeysText.parse(' , registry.applicants=id ,')]).toEqual([['registry.applicants', 0]])
  })

  it('reports every bad entry at once, quoting it and saying what is expected', () => {
    const expected = 'expected database.table=id or database.table=keyN (N from 1), database.schema.table for a PostgreSQL schema'
    expect(problems(SubjectKeysText, 'registry.applicants=id,applicants=id,a.b.c.d=id,a.b=key0,a.b=key100,a.b=ID,a.b=key2x, a.b = id')).toEqual(
      ['"applicants=id"', '"a.b.c.d=id"', '"a.b=key0"', '"a.b=key100"', '"a.b=ID"', '"a.b=key2x"', '"a.b = id"'].map((entry) => `: ${entry}: ${expected}`),
    )
  })

  it('refuses what is not text', () => {
    expect(SubjectKeysText.safeParse(['registry.applicants=id']).success).toBe(false)
  })
})

describe('bindSubjectKeys', () => {
  it('binds table names and key parts side by side, in entry order', () => {
    expect(bindSubjectKeys(SubjectKeysText.parse('practice.treatments=key2,registry.applicants=id'))).toEqual({
      subject_tables: ['practice.treatments', 'registry.applicants'],
      subject_parts: [2, 0],
    })
  })

  it('binds no keys as empty arrays, which ClickHouse still accepts as typed arrays', () => {
    expect(bindSubjectKeys(NO_SUBJECT_KEYS)).toEqual({ subject_tables: [], subject_parts: [] })
  })
})

describe('SubjectKeyEntries', () => {
  it('round-trips the keys SubjectKeysText parsed, as they travel to the store owner', () => {
    const keys = SubjectKeysText.parse('registry.applicants=id,practice.treatments=key1')
    const travelled = JSON.parse(JSON.stringify([...keys])) as unknown
    expect(SubjectKeyEntries.parse(travelled)).toEqual(keys)
  })

  it('validates entries again on arrival', () => {
    expect(problems(SubjectKeyEntries, [['applicants', 0]])).toEqual(['0.0: must be database.table or database.schema.table'])
    expect(problems(SubjectKeyEntries, [['a.b', 100]])).toEqual(['0.1: Too big: expected number to be <=99'])
    expect(problems(SubjectKeyEntries, [['a.b', -1]])).toEqual(['0.1: Too small: expected number to be >=0'])
    expect(problems(SubjectKeyEntries, [['a.b', 1.5]])).toEqual(['0.1: Invalid input: expected int, received number'])
    expect(problems(SubjectKeyEntries, [['a.b']])).toHaveLength(1)
    expect(SubjectKeyEntries.safeParse({ 'a.b': 0 }).success).toBe(false)
    expect(SubjectKeyEntries.safeParse(Array.from({ length: 1001 }, (_, i) => [`db.t${i}`, 0])).success).toBe(false)
  })
})

describe('parseQueryParams over saved queries', () => {
  /** The QUERY_PARAM_INVALID a parse throws, as the issues it names. */
  function refusal(queryName: string, params: unknown): { message: string; issues: unknown } {
    const err = thrownBy(QueryError, () => parseQueryParams(getSavedQuery(queryName), params))
    expect(err.code).toBe('QUERY_PARAM_INVALID')
    expect(err.details?.['query']).toBe(queryName)
    return { message: err.message, issues: err.details?.['issues'] }
  }

  it('who-touched-record: parses the window and leaves optional filters out', () => {
    expect(parseQueryParams(getSavedQuery('who-touched-record'), { table: 'applicants', record: '42', from: '2026-11-01' })).toEqual({
      table: 'applicants',
      record: '42',
      from: new Date('2026-11-01T00:00:00Z'),
    })
  })

  it('who-touched-record: names every bad parameter in one go, unknown keys and the window included', () => {
    const { message, issues } = refusal('who-touched-record', { table: '', record: 'x'.repeat(513), tabel: 'applicants', from: '2026-11-02', to: '2026-11-01' })
    expect(issues).toEqual([
      { param: 'table', problem: 'Too small: expected string to have >=1 characters' },
      { param: 'record', problem: 'Too big: expected string to have <=512 characters' },
      { param: 'tabel', problem: 'unknown key' },
      { param: 'to', problem: 'must be after from' },
    ])
    expect(message).toMatch(/^who-touched-record: table: .*; record: .*; tabel: unknown key; to: must be after from$/)
  })

  it('bulk-extraction: requires both ends of the window and applies the defaults', () => {
    expect(refusal('bulk-extraction', {}).issues).toEqual([
      { param: 'from', problem: expect.any(String) },
      { param: 'to', problem: expect.any(String) },
    ])
    expect(parseQueryParams(getSavedQuery('bulk-extraction'), { from: '2026-11-27', to: '2026-11-28T00:00:00Z', threshold: '500' })).toEqual({
      from: new Date('2026-11-27T00:00:00Z'),
      to: new Date('2026-11-28T00:00:00Z'),
      threshold: 500,
      factor: 10,
      baseline_days: 7,
    })
  })

  it('bulk-extraction: names each out-of-range number', () => {
    expect(refusal('bulk-extraction', { from: '2026-11-27', to: '2026-11-28', threshold: '0', factor: 'x', baseline_days: '367' }).issues).toEqual([
      { param: 'threshold', problem: 'Too small: expected number to be >=1' },
      { param: 'factor', problem: expect.any(String) },
      { param: 'baseline_days', problem: 'Too big: expected number to be <=366' },
    ])
  })

  it('breach-scope: parses comma-separated leads and normalises session hashes', () => {
    const session = 'AB'.repeat(32)
    expect(parseQueryParams(getSavedQuery('breach-scope'), { principals: 'clerk.marta, batch.job', ips: '192.0.2.7', sessions: session, from: '2026-11-27', to: '2026-11-28' })).toEqual({
      principals: ['clerk.marta', 'batch.job'],
      ips: ['192.0.2.7'],
      sessions: ['ab'.repeat(32)],
      from: new Date('2026-11-27T00:00:00Z'),
      to: new Date('2026-11-28T00:00:00Z'),
    })
  })

  it('breach-scope: names each bad list element by position, and asks for at least one lead', () => {
    expect(refusal('breach-scope', { ips: '192.0.2.7,fe80::1%eth0,nope', sessions: 'abc', from: '2026-11-27', to: '2026-11-28' }).issues).toEqual([
      { param: 'ips.1', problem: 'must be an IPv4 or IPv6 address (no zone id)' },
      { param: 'ips.2', problem: 'must be an IPv4 or IPv6 address (no zone id)' },
      { param: 'sessions.0', problem: 'must be the 64-hex session hash shown in query output' },
    ])
    expect(refusal('breach-scope', { from: '2026-11-28', to: '2026-11-27' }).issues).toEqual([
      { param: 'to', problem: 'must be after from' },
      { param: 'principals', problem: 'give at least one of principals, ips, sessions' },
    ])
  })

  it('refuses parameters that are not an object at all', () => {
    expect(refusal('records-touched-by-principal', undefined).issues).toEqual([{ param: '(params)', problem: expect.any(String) }])
    expect(refusal('records-touched-by-principal', { principal: 'a', limit: '-1' }).issues).toEqual([{ param: 'limit', problem: expect.any(String) }])
  })
})
