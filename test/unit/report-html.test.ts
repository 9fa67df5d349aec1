import { describe, expect, it } from 'vitest'
import type { ProvenanceStatus } from '../../queries/provenance.js'
import type { QueryAnswer } from '../../queries/saved-query.js'
import { filterSemantics, renderBreachReport, type BreachReportInput } from '../../reports/breach-report.js'
import { cssString, escapeHtml, html, renderProvenanceBanner, renderTable } from '../../reports/html.js'
import { renderPrincipalReport } from '../../reports/principal-report.js'
import type { ReportContext } from '../../reports/report-parts.js'
import type { TimelineRow } from '../../reports/report-rows.js'
import { renderTimeline } from '../../reports/svg-timeline.js'

const SUMMARY: Record<ProvenanceStatus, string> = {
  verified: 'VERIFIED: built on readtrail.access/0 seq 0..99, all within ranges the last verification passed',
  unverified: 'UNVERIFIED: this answer uses rows not yet verified: readtrail.access/0 seq 0..99 (never verified); run readtrail verify and ask again to stand behind it',
  unsigned: "UNSIGNED: this answer uses rows after their chain's newest signed checkpoint, which nothing outside the store vouches for yet: readtrail.access/0 seq 0..99 (no signed checkpoint); wait for the next checkpoint, run readtrail verify and ask again",
  failed: 'FAILED VERIFICATION: this answer uses rows in ranges whose last verification found damage: readtrail.access/0 seq 0..99 (verified only through 40); do not rely on it before investigating (readtrail verify)',
}

function answer(query: string, rows: Record<string, unknown>[], options: { status?: ProvenanceStatus; truncated?: boolean; params?: Record<string, unknown> } = {}): QueryAnswer<Record<string, unknown>> {
  const status = options.status ?? 'verified'
  return {
    query,
    description: `${query} (test)`,
    params: options.params ?? {},
    columns: Object.keys(rows[0] ?? {}),
    rows,
    truncated: options.truncated ?? false,
    sources: [{ chain_id: 'readtrail.access/0', first_seq: 0, last_seq: 99, events: 100 }],
    provenance: {
      status,
      chains: [],
      verify_state_at: status === 'unverified' ? null : '2026-11-28T08:00:00.000000Z',
      proof_age_ms: null,
      summary: SUMMARY[status],
    },
  }
}

/** Two hours of page-by-page scraping at night, one row per minute. */
function nightTimeline(table = 'applicants'): TimelineRow[] {
  return Array.from({ length: 120 }, (_, i) => ({
    bucket_start: new Date(Date.UTC(2026, 10, 27, 1, i)).toISOString().replace('Z', '000Z'),
    database: 'registry',
    table,
    reads: 59,
    rows_read: 5875,
  }))
}

const HOSTILE_PRINCIPAL = '<script>alert(1)</script>'
const HOSTILE_RECORD = '"onmouseover="alert(2)" x="'

const KEY_ID = 'a3f1'.repeat(16)

function reportContext(overrides: Partial<ReportContext> = {}): ReportContext {
  return {
    generatedAt: new Date(Date.UTC(2026, 10, 28, 9, 30)),
    database: 'readtrail',
    checkpointKey: { keyId: KEY_ID, path: '/srv/readtrail/keys/checkpoint.key.pub' },
    invocation: { environment: [['READTRAIL_HOME', '/srv/readtrail']], flags: ['--database', 'readtrail'] },
    ...overrides,
  }
}

function breachInput(overrides: Partial<BreachReportInput> = {}): BreachReportInput {
  return {
    context: reportContext(),
    span: null,
    params: { principals: `clerk.marta,${HOSTILE_PRINCIPAL}`, from: '2026-11-27T00:00:00Z', to: '2026-11-27T06:00:00Z' },
    bucket: '1m',
    scope: answer('breach-scope', [
      {
        database: 'registry',
        table: 'applicants',
        distinct_records: 705_000,
        distinct_subjects: 705_000,
        columns: ['id', 'full_name', 'date_of_birth'],
        reads: 7080,
        rows_read: 705_000,
        principals: ['clerk.marta', HOSTILE_PRINCIPAL],
        first_access: '2026-11-27T01:00:04.000000Z',
        last_access: '2026-11-27T02:59:58.000000Z',
      },
    ]),
    timeline: answer('breach-timeline', nightTimeline()),
    records: answer(
      'breach-records',
      [
        { database: 'registry', table: 'applicants', record_id: HOSTILE_RECORD, subject_id: null, columns: ['id', 'full_name'], reads: 1, principals: [HOSTILE_PRINCIPAL], first_access: '2026-11-27T01:00:04.000000Z', last_access: '2026-11-27T01:00:04.000000Z' },
        { database: 'registry', table: 'applicants', record_id: '100001', subject_id: 'A-100001', columns: ['id', 'full_name'], reads: 2, principals: ['clerk.marta'], first_access: '2026-11-27T01:00:05.000000Z', last_access: '2026-11-27T01:10:00.000000Z' },
      ],
      { truncated: true },
    ),
    ...overrides,
  }
}

function principalReport(status: ProvenanceStatus = 'verified', context: ReportContext = reportContext()): string {
  return renderPrincipalReport({
    context,
    timeZone: 'Europe/Berlin',
    span: null,
    params: { principal: HOSTILE_PRINCIPAL },
    bucket: '1m',
    timeline: answer('principal-timeline', [...nightTimeline(), ...nightTimeline('documents').slice(0, 10)]),
    offHours: answer(
      'off-hours-access',
      [{ principal_id: HOSTILE_PRINCIPAL, database: 'registry', table: 'applicants', reads: 7080, rows_read: 705_000, first_access: '2026-11-27T01:00:04.000000Z', last_access: '2026-11-27T02:59:58.000000Z' }],
      { status, params: { principal: HOSTILE_PRINCIPAL, from: '2026-11-27T01:00:00.000Z', to: '2026-11-27T03:00:00.000Z' } },
    ),
    records: answer('records-touched-by-principal', [{ database: 'registry', table: 'applicants', record_id: HOSTILE_RECORD, columns: ['id'], first_access: '2026-11-27T01:00:04.000000Z', last_access: '2026-11-27T01:00:04.000000Z', access_count: 1 }], {
      truncated: true,
    }),
  })
}

/** The tooltip texts of the bars: one per drawn bar segment. */
function barTitles(svg: string): string[] {
  const bars = /<g class="bars">([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? ''
  return [...bars.matchAll(/<rect [^>]*><title>([\s\S]*?)<\/title><\/rect>/g)].map((m) => m[1]!)
}

describe('escaping', () => {
  it('escapes the five characters that matter in content and quoted attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
    expect(String(html`<td title="${'" onclick="x'}">${'<b>'}</td>`)).toBe('<td title="&quot; onclick=&quot;x">&lt;b&gt;</td>')
  })

  it('renders a hostile principal and record id inert in both reports', () => {
    for (const page of [renderBreachReport(breachInput()), principalReport()]) {
      expect(page).not.toContain('<script')
      expect(page).not.toContain('"onmouseover=')
      expect(page).not.toMatch(/\sonmouseover=/)
      expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
      expect(page).toContain('&quot;onmouseover=&quot;alert(2)&quot; x=&quot;')
    }
  })

  it('escapes table names in the chart legend and tooltips', () => {
    const svg = String(renderTimeline(nightTimeline('<img src=x onerror=alert(3)>'), { bucket: '1m', title: 'Rows' }))
    expect(svg).not.toContain('<img')
    expect(svg).toContain('registry.&lt;img src=x onerror=alert(3)&gt;')
  })
})

describe('renderTable', () => {
  it('right-aligns numbers with separators, joins arrays, marks null, and shows the truncation note', () => {
    const table = String(
      renderTable({
        id: 't',
        columns: [
          { key: 'table', label: 'Table' },
          { key: 'reads', label: 'Reads' },
          { key: 'columns', label: 'Columns' },
          { key: 'subjects', label: 'Subjects' },
        ],
        rows: [{ table: 'applicants', reads: 705000, columns: ['id', 'full_name'], subjects: null }],
        truncatedNote: html`1 of 2 shown`,
      }),
    )
    expect(table).toContain('<th scope="col" class="num">Reads</th>')
    expect(table).toContain('<td class="num" data-col="reads">705,000</td>')
    expect(table).toContain('<td class="" data-col="columns">id, full_name</td>')
    expect(table).toMatch(/data-col="subjects"><span class="null">—<\/span>/)
    expect(table).toContain('<p class="truncated">1 of 2 shown</p>')
  })
})

describe('renderTimeline', () => {
  it('draws a labelled placeholder for no buckets', () => {
    const svg = String(renderTimeline([], { bucket: '1h', title: 'Rows read by clerk.marta' }))
    expect(svg).toMatch(/^<svg [^>]*role="img"/)
    expect(svg).toContain('aria-label="Rows read by clerk.marta: no reads in this window"')
    expect(svg).toContain('No reads in this window')
  })

  it('draws one bucket as one bar with its figures in the tooltip', () => {
    const svg = String(renderTimeline([{ bucket_start: '2026-11-27T02:00:00.000000Z', database: 'registry', table: 'applicants', reads: 3, rows_read: 150 }], { bucket: '1h', title: 'Rows' }))
    expect(barTitles(svg)).toEqual(['2026-11-27 02:00–2026-11-27 03:00 UTC\nregistry.applicants: 150 rows read in 3 reads'])
    expect(svg).toContain('role="img"')
    expect(svg).toMatch(/aria-label="Rows: 150 rows read from 2026-11-27 02:00 to 2026-11-27 03:00 UTC, 1 bars of 1 hour; peak 150/)
    expect(svg).toContain('registry.applicants</text>')
  })

  it('merges thousands of buckets into at most 200 aligned bars without losing a row', () => {
    // A fortnight of minute buckets on two tables: 40,320 rows.
    const rows: TimelineRow[] = []
    for (let i = 0; i < 20_160; i++) {
      const bucket_start = new Date(Date.UTC(2026, 10, 14) + i * 60_000).toISOString()
      rows.push({ bucket_start, database: 'registry', table: 'applicants', reads: 1, rows_read: 10 })
      rows.push({ bucket_start, database: 'registry', table: 'documents', reads: 1, rows_read: 1 })
    }
    const svg = String(renderTimeline(rows, { bucket: '1m', title: 'Rows' }))
    const titles = barTitles(svg)
    const slots = new Set(titles.map((t) => t.split('\n')[0]))
    expect(slots.size).toBeLessThanOrEqual(200)
    expect(slots.size).toBeGreaterThan(50)
    expect(svg).toContain('one bar = 2 hours')
    const rowsRead = titles.reduce((s, t) => s + Number(/: ([\d,]+) rows read/.exec(t)![1]!.replace(/,/g, '')), 0)
    expect(rowsRead).toBe(20_160 * 11)
    expect(svg).toContain('aria-label="Rows: 221,760 rows read')
  })

  it('keeps every table when there are more tables than colours', () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ bucket_start: '2026-11-27T01:00:00Z', database: 'registry', table: `t${i}`, reads: 1, rows_read: 12 - i }))
    const svg = String(renderTimeline(rows, { bucket: '1h', title: 'Rows' }))
    expect(svg).toContain('6 other tables')
    expect(barTitles(svg).reduce((s, t) => s + Number(/: (\d+) rows read/.exec(t)![1]), 0)).toBe(78)
  })
})

describe('provenance banner', () => {
  const banner = (...statuses: ProvenanceStatus[]) =>
    String(renderProvenanceBanner(statuses.map((s, i) => ({ label: `query-${i}`, provenance: answer(`query-${i}`, [], { status: s }).provenance }))))

  it('says VERIFIED only when every answer is verified, and shows each summary', () => {
    const b = banner('verified', 'verified')
    expect(b).toContain('data-status="verified"')
    expect(b).toContain('✓ VERIFIED')
    expect(b).not.toMatch(/UNVERIFIED|FAILED/)
    expect(b).toContain(`<strong>query-1</strong>: ${escapeHtml(SUMMARY.verified)}`)
  })

  it('says UNVERIFIED in words when any answer is unverified', () => {
    const b = banner('verified', 'unverified')
    expect(b).toContain('class="banner unverified"')
    expect(b).toContain('UNVERIFIED — NOT YET PROVEN COMPLETE OR UNTOUCHED')
    expect(b).toContain('Run readtrail verify')
    expect(b).toContain('<strong>query-1</strong>: UNVERIFIED: this answer uses rows not yet verified')
  })

  it('says FAILED VERIFICATION when any answer failed, whatever the others say', () => {
    const b = banner('unverified', 'failed', 'verified')
    expect(b).toContain('class="banner failed"')
    expect(b).toContain('✕ FAILED VERIFICATION — DO NOT RELY ON THESE FIGURES')
    expect(b).toContain('<strong>query-1</strong>: FAILED VERIFICATION: this answer uses rows in ranges whose last verification found damage')
  })

  it('says UNSIGNED in words when an answer rests on rows no checkpoint signs, below failed and above unverified', () => {
    const b = banner('verified', 'unsigned', 'unverified')
    expect(b).toContain('class="banner unsigned"')
    expect(b).toContain('data-status="unsigned"')
    expect(b).toContain('UNSIGNED — NO SIGNATURE VOUCHES FOR PART OF THIS REPORT YET')
    expect(b).toContain('<strong>query-1</strong>: UNSIGNED: ')
    expect(banner('unsigned', 'failed')).toContain('data-status="failed"')
  })

  it('tags a summary that does not open with its status', () => {
    const provenance = { ...answer('q', [], { status: 'unverified' }).provenance, summary: 'no matching events; the log has never been verified (run readtrail verify), so absence is not proven either' }
    expect(String(renderProvenanceBanner([{ label: 'breach-scope', provenance }]))).toContain('<strong>breach-scope</strong>: [UNVERIFIED] no matching events')
  })

  it('puts the worst status of a report in its banner', () => {
    expect(principalReport('failed')).toContain('data-status="failed"')
    expect(renderBreachReport(breachInput({ timeline: answer('breach-timeline', nightTimeline(), { status: 'unverified' }) }))).toContain('data-status="unverified"')
  })
})

describe('reports', () => {
  it('reference nothing outside the file and run no script', () => {
    for (const page of [renderBreachReport(breachInput()), principalReport(), renderBreachReport(breachInput({ timeline: answer('breach-timeline', []) }))]) {
      expect(page).not.toMatch(/https?:\/\//i)
      expect(page).not.toMatch(/\bsrc\s*=/i)
      expect(page).not.toMatch(/<(script|link|img|iframe|object|embed)\b/i)
      expect(page).not.toMatch(/url\(|@import/i)
      expect(page).toContain(`default-src 'none'`)
    }
  })

  it('breach report: key figures, the per-table scope and "N of M shown" with the export command', () => {
    const page = renderBreachReport(breachInput())
    expect(page).toContain('<td class="num" data-col="distinct_records">705,000</td>')
    expect(page).toMatch(/Data subjects<\/div><div class="value"><span class="nowrap">705,000<\/span></)
    expect(page).toContain('2 of 705,000 records shown.')
    expect(page).toContain(
      `READTRAIL_HOME=/srv/readtrail readtrail query breach-records --format csv --param limit=0 --param &#39;principals=clerk.marta,&lt;script&gt;alert(1)&lt;/script&gt;&#39; --param from=2026-11-27T00:00:00Z --param to=2026-11-27T06:00:00Z --database readtrail`,
    )
    // The axis spans the whole 6-hour window, quiet hours included: 360 minutes, merged in pairs.
    expect(page).toContain('one bar = 2 minutes')
    expect(page).toMatch(/aria-label="Rows read in scope, by table: 705,000 rows read from 2026-11-27 00:00 to 2026-11-27 06:00 UTC, 180 bars/)
  })

  it('breach report without matches says so instead of drawing empty tables', () => {
    const page = renderBreachReport(breachInput({ scope: answer('breach-scope', []), timeline: answer('breach-timeline', []), records: answer('breach-records', []) }))
    expect(page).toContain('No read matched these filters in this window.')
    expect(page).toContain('No reads in this window')
  })

  it('principal report: tables read summed from the timeline, off-hours reads and the records note', () => {
    const page = principalReport()
    expect(page).toMatch(/<tr><td class="" data-col="database">registry<\/td><td class="" data-col="table">applicants<\/td><td class="num" data-col="reads">7,080<\/td><td class="num" data-col="rows_read">705,000<\/td>/)
    expect(page).toContain('Reads outside working hours (Mon–Fri 08:00–18:00 Europe/Berlin)')
    expect(page).toContain('The first 1 records shown; the account touched more.')
  })
})

describe('the annex an analyst signs', () => {
  const annex = reportContext({ caseId: 'INC-2026-0417', author: 'Dana Ruiz' })

  it('names the case and the author in the header, the sign-off and every printed page', () => {
    const page = renderBreachReport(breachInput({ context: annex }))
    expect(page).toContain('<dt>Case</dt><dd id="case-id">INC-2026-0417</dd>')
    expect(page).toContain('<dt>Prepared by</dt><dd id="author">Dana Ruiz</dd>')
    expect(page).toMatch(/<section class="signoff" id="signoff"[\s\S]*<dt>Case<\/dt><dd>INC-2026-0417<\/dd>[\s\S]*<dt>Prepared by<\/dt><dd>Dana Ruiz<\/dd>[\s\S]*<dt>Signature<\/dt><dd><\/dd>/)
    expect(page).toContain('@top-right { content: "Case INC-2026-0417";')
    expect(page).toContain('@bottom-left { content: "Prepared by Dana Ruiz · generated 2026-11-28 09:30:00 UTC";'.replace('·', '\\b7 '))
    expect(page).toContain('@bottom-right { content: "Page " counter(page) " of " counter(pages);')
  })

  it('leaves case and author out when not given, and the sign-off blank to fill in by hand', () => {
    const page = renderBreachReport(breachInput())
    expect(page).not.toContain('id="case-id"')
    expect(page).toContain('@top-right { content: "";')
    expect(page).toMatch(/<dt>Case<\/dt><dd><\/dd>/)
  })

  it('cannot break out of the page-margin CSS with a case id or author', () => {
    const page = renderBreachReport(breachInput({ context: reportContext({ caseId: '"; } </style><script>alert(1)</script>', author: 'a\\"b' }) }))
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!
    expect(style).not.toContain('<')
    expect(style).toContain('@top-right { content: "Case \\22 ; \\7d  \\3c /style\\3e \\3c script\\3e alert(1)\\3c /script\\3e ";')
    expect(page.match(/<script/g)).toBeNull()
    expect(cssString('a\\"b\n')).toBe('"a\\5c \\22 b\\a "')
  })

  it('states the checkpoint key id, or that there is none', () => {
    expect(renderBreachReport(breachInput())).toContain(`<code class="key-id">${KEY_ID}</code> (SHA-256 of the Ed25519 public key <code>/srv/readtrail/keys/checkpoint.key.pub</code>`)
    const none = renderBreachReport(breachInput({ context: reportContext({ checkpointKey: { keyId: null, path: '/srv/x.pub' } }) }))
    expect(none).toContain('none: no checkpoint public key at <code>/srv/x.pub</code>')
  })

  it('says how the leads combine: the window AND any one lead', () => {
    expect(filterSemantics({ principals: 'a', from: 'x', to: 'y' })).toBe('A read is in scope when it falls inside the window AND its account is one listed. Within a list, any entry matches. A read matching several leads is counted once.')
    expect(filterSemantics({ principals: 'a', ips: '203.0.113.7', sessions: 'ab' })).toBe(
      'A read is in scope when it falls inside the window AND its account is one listed OR its client IP is one listed OR its session is one listed (any one suffices). Within a list, any entry matches. A read matching several leads is counted once.',
    )
    expect(renderBreachReport(breachInput())).toContain('<dt>Filter</dt><dd>A read is in scope when it falls inside the window AND its account is one listed.')
  })

  it('gives a reproduce line with READTRAIL_HOME, the store flags, case and author, quoted for a shell', () => {
    const context = reportContext({
      caseId: 'INC 17',
      author: "Dana O'Neil",
      invocation: { environment: [['READTRAIL_HOME', '/srv/read trail'], ['READTRAIL_SUBJECT_KEYS', 'registry.applicants=id']], flags: ['--database', 'readtrail', '--data-dir', '/srv/data'] },
    })
    const page = renderBreachReport(breachInput({ context }))
    const line = /<code class="cmd" id="reproduce">([\s\S]*?)<\/code>/.exec(page)![1]!
    expect(line).toBe(
      escapeHtml(
        `READTRAIL_HOME='/srv/read trail' READTRAIL_SUBJECT_KEYS=registry.applicants=id readtrail report breach-scope --param 'principals=clerk.marta,<script>alert(1)</script>' ` +
          `--param from=2026-11-27T00:00:00Z --param to=2026-11-27T06:00:00Z --case-id 'INC 17' --author 'Dana O'\\''Neil' --database readtrail --data-dir /srv/data`,
      ),
    )
  })

  it('states the time zone: UTC in the breach report; UTC plus the working-hours zone (and --tz) in the principal report', () => {
    expect(renderBreachReport(breachInput())).toContain('<dt>Time zone</dt><dd id="time-zone">UTC: every time in this report.</dd>')
    const page = principalReport()
    expect(page).toContain('<dd id="time-zone">UTC for every time shown. Working hours (and so off-hours reads) are judged in Europe/Berlin, daylight saving included; --tz changes it.</dd>')
    expect(/<code class="cmd" id="reproduce">([\s\S]*?)<\/code>/.exec(page)![1]).toContain('--tz Europe/Berlin')
  })

  it('prints the timeline figures under the chart, not only in tooltips', () => {
    const page = renderBreachReport(breachInput())
    expect(page).toContain('<table class="data" id="timeline-table">')
    const rowsRead = [.../<table class="data" id="timeline-table">([\s\S]*?)<\/table>/.exec(page)![1]!.matchAll(/data-col="rows_read">([\d,]+)</g)].reduce((s, m) => s + Number(m[1]!.replace(/,/g, '')), 0)
    expect(rowsRead).toBe(120 * 5875)
    expect(page).not.toContain('point at a bar')
  })

  it('says once what every listed record shares, so each record prints on one line', () => {
    const table = String(
      renderTable({
        id: 'r',
        columns: [
          { key: 'table', label: 'Table' },
          { key: 'record_id', label: 'Record id', kind: 'id' },
          { key: 'columns', label: 'Columns' },
        ],
        rows: [
          { table: 'applicants', record_id: '1', columns: ['id', 'name'] },
          { table: 'applicants', record_id: '2', columns: ['id'] },
        ],
        hoist: ['table', 'columns'],
      }),
    )
    expect(table).toContain('<p class="common" id="r-common">In every row below: <span data-col="table"><strong>Table</strong> applicants</span></p>')
    expect(table).not.toContain('data-col="table">applicants</td>')
    expect(table).toContain('<td class="" data-col="columns">id, name</td>')
  })
})
