import { describe, expect, it } from 'vitest'
import { tableName } from '../../queries/params.js'
import { resolveTables, type RecordedTable } from '../../queries/table-names.js'

/** The error a synchronous call throws. */
function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected an error')
}

const RECORDED: RecordedTable[] = [
  { db_name: 'archive', table_name: 'applicants' },
  { db_name: 'clinic', table_name: 'public.patients' },
  { db_name: 'clinic', table_name: 'billing.invoices' },
  { db_name: 'legacy', table_name: 'patients' },
  { db_name: 'registry', table_name: 'applicants' },
  { db_name: 'shop', table_name: 'shop.customers' },
]

const resolve = (names: string[], database?: string) => {
  const r = resolveTables('q', { table: 'table', database: 'database' }, names, database, RECORDED)
  return r.db_names.map((d, i) => `${d}|${r.table_names[i]}`).sort()
}

describe('table names as users type them, matched to what the hooks recorded', () => {
  it.each([
    [['patients'], ['clinic|public.patients', 'legacy|patients']],
    [['public.patients'], ['clinic|public.patients', 'legacy|patients']],
    [['clinic.public.patients'], ['clinic|public.patients']],
    [['clinic.patients'], ['clinic|public.patients']],
    [['legacy.public.patients'], ['legacy|patients']],
    [['applicants'], ['archive|applicants', 'registry|applicants']],
    [['registry.applicants'], ['registry|applicants']],
    [['invoices'], ['clinic|billing.invoices']],
    [['billing.invoices'], ['clinic|billing.invoices']],
    [['customers'], ['shop|shop.customers']],
    [['shop.customers'], ['shop|shop.customers']],
    [['shop.shop.customers'], ['shop|shop.customers']],
    [['registry.applicants', 'clinic.patients'], ['clinic|public.patients', 'registry|applicants']],
  ])('%j means %j', (names, expected) => {
    expect(resolve(names)).toEqual(expected)
  })

  it('narrows to the database parameter, and a database alone means its tables', () => {
    expect(resolve(['patients'], 'legacy')).toEqual(['legacy|patients'])
    expect(resolve([], 'clinic')).toEqual(['clinic|billing.invoices', 'clinic|public.patients'])
    expect(resolveTables('q', {}, [], undefined, RECORDED)).toEqual({ db_names: [], table_names: [] })
  })

  it('does not let a schema stand in for another, nor a billing table for a public one', () => {
    expect(() => resolve(['billing.patients'])).toThrow(/QUERY_TABLE_UNKNOWN|no table/)
    expect(() => resolve(['public.invoices'])).toThrow()
  })

  it('says "did you mean" with the nearest recorded names, a different case first', async () => {
    expect(caught(() => resolve(['patient']))).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN', details: { param: 'table', value: 'patient', suggestions: ['clinic.public.patients', 'legacy.patients'] } })
    expect(caught(() => resolve(['registry.applicant']))).toMatchObject({ details: { suggestions: ['registry.applicants'] } })
    expect(caught(() => resolve(['Patients']))).toMatchObject({ details: { suggestions: ['clinic.public.patients', 'legacy.patients'] } })
    const far = (caught(() => resolve(['zzzzzzzz']))) as Error & { details: { suggestions: string[] } }
    expect(far.details.suggestions).toEqual([])
    expect(far.message).toContain('recorded: "archive.applicants"')
    expect(caught(() => resolve(['patients'], 'clinc'))).toMatchObject({ details: { param: 'database', suggestions: ['clinic'] } })
    expect(caught(() => resolveTables('q', {}, ['patients'], undefined, []))).toMatchObject({ message: expect.stringContaining('no reads are recorded in this store yet') })
  })

  it('accepts one to three dotted parts and nothing that cannot be a name', () => {
    for (const ok of ['patients', 'public.patients', 'db.public.patients', 'db.patients']) expect(tableName.safeParse(ok).success).toBe(true)
    for (const bad of ['', 'a.b.c.d', '.patients', 'patients.', 'a..b', 'patients; DROP TABLE x']) expect(tableName.safeParse(bad).success, bad).toBe(false)
  })
})
