/**
 * HTML building blocks for the analyst reports. Every value shown comes from
 * the audit log, and much of it is attacker-influenced: an application that
 * logs the user name typed at login, or a record id taken from a URL, writes
 * whatever the attacker chose. So text reaches the page only through `html`
 * templates, which escape every interpolation unless it is `SafeHtml` built
 * the same way.
 */
import { PROVENANCE_RANK, type Provenance, type ProvenanceStatus } from '../queries/provenance.js'

/** Markup built by `html` (or `raw` on a constant): the only thing inserted unescaped. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

export type HtmlValue = SafeHtml | string | number | null | undefined | false | readonly HtmlValue[]

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text → HTML safe in element content and in quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!)
}

function renderValue(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(renderValue).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(String(value))
}

/** Tagged template: the literal parts are markup, every `${value}` is escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!
  values.forEach((v, i) => (out += renderValue(v) + strings[i + 1]!))
  return new SafeHtml(out)
}

/** Marks a constant (never data) as markup. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup)
}

/** Two UTC times, the date said once when both fall on the same day. */
export function formatPeriod(firstIso: string, lastIso: string): string {
  const first = formatUtc(firstIso).replace(/ UTC$/, '')
  const last = formatUtc(lastIso)
  return first.slice(0, 10) === last.slice(0, 10) ? `${first} – ${last.slice(11)}` : `${first} – ${last}`
}

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** Counts with thousands separators, fixed locale so a report reads the same on every machine. */
export function formatCount(n: number): string {
  return INTEGER.format(n)
}

/** `2026-11-27T01:00:00.000000Z` → `2026-11-27 01:00:00 UTC`; sub-second digits kept only when not zero. */
export function formatUtc(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?$/.exec(iso)
  if (!m) return iso
  const fraction = m[3] && /[1-9]/.test(m[3]) ? m[3] : ''
  return `${m[1]} ${m[2]}${fraction} UTC`
}

// One stylesheet, inline: the file is attached to tickets and opened offline,
// so nothing may be fetched. Print rules keep the banner colours and the
// table headers on each page; status never relies on colour alone.
const STYLE = `
:root { --ink:#1b1f24; --muted:#57606a; --rule:#d0d7de; --soft:#f6f8fa; --accent:#0b3d91; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 40px 48px; }
header.report { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 20px; }
header.report .kicker { text-transform: uppercase; letter-spacing: .08em; font-size: 11px; color: var(--muted); font-weight: 600; }
h1 { font-size: 26px; margin: 4px 0 6px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
p.lead { margin: 0; color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 14px 0 0; font-size: 13px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
code.cmd { display: block; white-space: pre-wrap; overflow-wrap: anywhere; background: var(--soft); border: 1px solid var(--rule); padding: 6px 8px; margin-top: 4px; }
.banner { border: 2px solid; border-radius: 4px; padding: 12px 16px; margin: 0 0 24px; }
.banner .verdict { font-size: 17px; font-weight: 700; letter-spacing: .02em; }
.banner ul { margin: 8px 0 0; padding-left: 20px; }
.banner li { margin: 3px 0; word-break: break-word; }
.banner.verified { border-color: #1a7f37; background: #eef8f0; }
.banner.verified .verdict { color: #116329; }
.banner.unverified { border: 4px dashed #9a6700; background: #fff8c5; }
.banner.unverified .verdict { color: #7d4e00; }
.banner.unsigned { border: 4px dashed #bc4c00; background: #fff1e5; }
.banner.unsigned .verdict { color: #953800; }
.banner.failed { border: 6px double #cf222e; background: #ffebe9; }
.banner.failed .verdict { color: #a40e26; font-size: 20px; }
.figures { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; margin: 8px 0 0; }
.figures.cols-4 { grid-template-columns: repeat(4, 1fr); }
.figure { border: 1px solid var(--rule); border-radius: 4px; padding: 10px 12px; background: var(--soft); }
.figure .label { font-size: 11px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.figure .value { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.figure .value.small { font-size: 14px; font-weight: 600; }
.figure .note { font-size: 11.5px; color: var(--muted); margin-top: 2px; }
figure.chart { margin: 8px 0 0; }
figure.chart svg { width: 100%; height: auto; display: block; }
figure.chart figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
table.data { border-collapse: collapse; width: 100%; font-size: 12.5px; margin-top: 6px; }
table.data caption { text-align: left; color: var(--muted); font-size: 12px; padding-bottom: 4px; }
table.data th, table.data td { border-bottom: 1px solid var(--rule); padding: 4px 8px; text-align: left; vertical-align: top; }
table.data th { background: var(--soft); font-weight: 600; border-bottom: 2px solid #afb8c1; vertical-align: bottom; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.data td.num { white-space: nowrap; }
table.data td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.data td.id { font-family: ui-monospace, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px; overflow-wrap: anywhere; min-width: 14ch; }
table.data tbody tr:nth-child(even) td { background: #fbfcfd; }
.null { color: var(--muted); }
.nowrap { white-space: nowrap; }
.note { color: var(--muted); font-size: 12.5px; }
.truncated { border-left: 4px solid #9a6700; background: #fff8c5; padding: 8px 12px; margin: 8px 0 0; font-size: 13px; }
.empty { border: 1px dashed var(--rule); padding: 14px; color: var(--muted); text-align: center; margin-top: 6px; }
footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid var(--rule); font-size: 11.5px; color: var(--muted); }
p.common { margin: 6px 0 0; font-size: 12.5px; }
p.common span + span::before { content: " · "; color: var(--muted); }
section.signoff { margin-top: 28px; border: 1px solid var(--rule); padding: 10px 14px; break-inside: avoid; }
section.signoff h2 { margin-top: 0; }
section.signoff dl { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 14px 12px; margin: 6px 0 0; align-items: end; }
section.signoff dt { color: var(--muted); }
section.signoff dd { margin: 0; min-height: 1.5em; border-bottom: 1px solid var(--ink); }
@page { size: A4; margin: 14mm 11mm 13mm; }
@media print {
  /* Compact, so a 500-record annex prints on a few pages: one line per record row. */
  body { font-size: 9.5px; line-height: 1.3; }
  main { max-width: none; padding: 0; }
  header.report { padding-bottom: 6px; margin-bottom: 10px; }
  h1 { font-size: 17px; margin: 2px 0 3px; }
  h2 { font-size: 12px; margin: 12px 0 4px; padding-bottom: 2px; }
  dl.meta { font-size: 9px; gap: 1px 10px; margin-top: 6px; }
  code, .mono, code.cmd { font-size: 8.5px; }
  code.cmd { padding: 3px 5px; }
  .banner { padding: 6px 10px; margin-bottom: 10px; }
  .banner .verdict { font-size: 12px; }
  .banner ul { margin-top: 3px; }
  .figures { gap: 5px; }
  .figure { padding: 4px 8px; }
  .figure .value { font-size: 14px; }
  .figure .label, .figure .note { font-size: 8.5px; }
  figure.chart svg { max-height: 72mm; }
  figure.chart figcaption, p.common, .note, .truncated { font-size: 9px; }
  .truncated { padding: 4px 8px; }
  table.data { font-size: 8px; margin-top: 3px; }
  table.data caption { font-size: 8.5px; padding-bottom: 2px; }
  table.data th, table.data td { padding: 0.5px 4px; line-height: 1.25; }
  /* Ids keep their width (they break only when longer than a line); lists of names wrap instead. */
  table.data td.id { font-size: 8px; min-width: 0; overflow-wrap: break-word; }
  table.data td.id.short { white-space: nowrap; }
  footer { margin-top: 14px; font-size: 8.5px; }
  .banner, .figure, table.data th, .truncated { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  figure.chart, .banner, .figures { break-inside: avoid; }
  table.data tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
`

/**
 * Text as a CSS string literal that can carry anything an analyst typed (a
 * case id, a name) into the page margins: every character outside a small
 * safe set becomes a hex escape, so no quote ends the string and no
 * `</style>` ends the stylesheet.
 */
export function cssString(text: string): string {
  return `"${[...text].map((c) => (/^[A-Za-z0-9 _.,:;@#+=()/-]$/.test(c) ? c : `\\${c.codePointAt(0)!.toString(16)} `)).join('')}"`
}

/** What each printed page carries in its margins. */
export interface PageMarks {
  /** Top left, e.g. "readtrail · Breach scope". */
  title: string
  /** Top right, e.g. "Case INC-2026-17". */
  topRight: string
  /** Bottom left, e.g. "Prepared by … · generated …". */
  footer: string
}

/**
 * Page margin boxes (CSS Paged Media; Chromium prints them since version
 * 131, and prints its own date/URL header and footer only where a page
 * defines none): the case on every sheet, and "Page n of m" so a missing
 * sheet of a signed annex shows.
 */
function pageRules(marks: PageMarks): string {
  const box = 'font: 8px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #57606a;'
  return `@page {
  @top-left { content: ${cssString(marks.title)}; ${box} }
  @top-right { content: ${cssString(marks.topRight)}; ${box} }
  @bottom-left { content: ${cssString(marks.footer)}; ${box} }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); ${box} }
}`
}

/**
 * The whole document. The CSP forbids scripts and every fetch: even if some
 * value escaped escaping, opening the report runs nothing and contacts no one.
 */
export function renderDocument(doc: { title: string; body: SafeHtml; pageMarks: PageMarks }): string {
  return `<!DOCTYPE html>
${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="readtrail">
<title>${doc.title}</title>
<style>${raw(STYLE)}${/* Data inside, but only as cssString() literals: */ raw(pageRules(doc.pageMarks))}</style>
</head>
<body>
<main>
${doc.body}
</main>
</body>
</html>
`}`
}

/** How a table column is shown. */
export interface TableColumn {
  key: string
  label: string
  /** Monospace, breakable anywhere: record ids, session hashes. */
  kind?: 'id' | 'time' | 'text'
}

/** Time columns are labelled once as UTC. */
function headerLabel(column: TableColumn): string {
  return column.kind === 'time' ? `${column.label} (UTC)` : column.label
}

export interface TableSpec {
  id: string
  columns: readonly TableColumn[]
  rows: readonly Record<string, unknown>[]
  caption?: string
  /** Shown under the table when the rows are only part of the answer. */
  truncatedNote?: SafeHtml | null
  /** Shown instead of an empty table. */
  emptyText?: string
  /**
   * Columns that, when every row (two or more) shows the same value in them,
   * are said once above the table instead of in every row: a breach's 500
   * records of one table, read by one account, print one line each.
   */
  hoist?: readonly string[]
}

/**
 * A data table: numbers right-aligned with separators, arrays joined with
 * ", ", null as a dash, ISO times in UTC. `data-col` on each cell names its
 * column so a reader (or a test) can find a figure without counting cells.
 */
export function renderTable(spec: TableSpec): SafeHtml {
  const note = spec.truncatedNote ? html`<p class="truncated">${spec.truncatedNote}</p>` : null
  if (spec.rows.length === 0) return html`<p class="empty" id="${spec.id}">${spec.emptyText ?? 'No rows.'}</p>${note}`
  const isNumeric = (key: string) => spec.rows.some((r) => typeof r[key] === 'number') && spec.rows.every((r) => typeof r[key] === 'number' || r[key] === null)
  const numeric = new Set(spec.columns.map((c) => c.key).filter(isNumeric))
  const sameInEveryRow = (c: TableColumn) => spec.rows.length > 1 && spec.rows.every((r) => cellText(c, r[c.key]) === cellText(c, spec.rows[0]![c.key]))
  const hoisted = spec.columns.filter((c) => spec.hoist?.includes(c.key) && sameInEveryRow(c))
  const columns = spec.columns.filter((c) => !hoisted.includes(c))
  const common =
    hoisted.length > 0
      ? html`<p class="common" id="${spec.id}-common">In every row below: ${hoisted.map((c) => html`<span data-col="${c.key}"><strong>${headerLabel(c)}</strong> ${formatCell(spec.rows[0]![c.key], c)}</span>`)}</p>`
      : null
  const head = columns.map((c) => html`<th scope="col" class="${numeric.has(c.key) ? 'num' : ''}">${headerLabel(c)}</th>`)
  const body = spec.rows.map(
    (row) => html`<tr>${columns.map((c) => renderCell(c, row[c.key], numeric.has(c.key)))}</tr>
`,
  )
  return html`${common}<table class="data" id="${spec.id}">${spec.caption ? html`<caption>${spec.caption}</caption>` : null}
<thead><tr>${head}</tr></thead>
<tbody>
${body}</tbody>
</table>${note}`
}

/** Ids up to this long stay on one line in print: breaking them costs a second line for every record. */
const SHORT_ID = 24

function renderCell(column: TableColumn, value: unknown, numeric: boolean): SafeHtml {
  const id = typeof value === 'string' && value.length <= SHORT_ID ? 'id short' : 'id'
  const cls = numeric ? 'num' : column.kind === 'id' ? id : column.kind === 'time' ? 'time' : ''
  return html`<td class="${cls}" data-col="${column.key}">${formatCell(value, column)}</td>`
}

/** What a cell shows, as text: two cells that show the same are the same to a reader. */
function cellText(column: TableColumn, value: unknown): string {
  return renderValue(formatCell(value, column))
}

function formatCell(value: unknown, column: TableColumn): HtmlValue {
  if (value === null || value === undefined) return html`<span class="null">—</span>`
  if (typeof value === 'number') return formatCount(value)
  if (Array.isArray(value)) return value.map(String).join(', ')
  // The header says "(UTC)"; repeating it in every cell costs the width the ids need.
  if (column.kind === 'time' && typeof value === 'string') return formatUtc(value).replace(/ UTC$/, '')
  return String(value)
}

/** A key figure: label, value, optional note. */
export interface Figure {
  label: string
  value: string
  note?: string
  /** Long values (timestamps) in a smaller type. */
  small?: boolean
}

/** A period breaks only between its ends, never inside a date. */
function keepTogether(value: string): SafeHtml[] {
  return value.split(' – ').map((part, i) => html`${i > 0 ? ' – ' : ''}<span class="nowrap">${part}</span>`)
}

/** Key figures in a grid of 3 or 4 columns, so a row never ends with a lone card. */
export function renderFigures(figures: readonly Figure[], columns: 3 | 4 = 3): SafeHtml {
  return html`<div class="figures cols-${columns}">${figures.map(
    (f) => html`<div class="figure"><div class="label">${f.label}</div><div class="value${f.small ? ' small' : ''}">${keepTogether(f.value)}</div>${f.note ? html`<div class="note">${f.note}</div>` : null}</div>`,
  )}</div>`
}

/** A report is only as trustworthy as the least-verified answer it uses (failed > unsigned > unverified > verified). */
export function worstStatus(statuses: readonly ProvenanceStatus[]): ProvenanceStatus {
  return statuses.reduce<ProvenanceStatus>((worst, s) => (PROVENANCE_RANK[s] > PROVENANCE_RANK[worst] ? s : worst), 'verified')
}

// Words first, then colour and border style: a report printed in black and
// white, or read by someone who cannot tell red from green, still says it.
const VERDICTS: Record<ProvenanceStatus, { mark: string; headline: string; advice: string }> = {
  verified: {
    mark: '✓',
    headline: 'VERIFIED',
    advice: 'Every answer in this report stands on log ranges that the last verification passed (hash chains intact, signed checkpoints matched).',
  },
  unverified: {
    mark: '!',
    headline: 'UNVERIFIED — NOT YET PROVEN COMPLETE OR UNTOUCHED',
    advice: 'Part of this report rests on log entries that have not been verified. Run readtrail verify, then generate the report again before relying on it.',
  },
  unsigned: {
    mark: '!',
    headline: 'UNSIGNED — NO SIGNATURE VOUCHES FOR PART OF THIS REPORT YET',
    advice:
      'Part of this report rests on log entries written after the newest signed checkpoint: nothing outside the database vouches for them yet, so they could have been added or altered there. Wait for the next checkpoint, run readtrail verify, then generate the report again.',
  },
  failed: {
    mark: '✕',
    headline: 'FAILED VERIFICATION — DO NOT RELY ON THESE FIGURES',
    advice: 'Part of this report rests on log ranges in which verification found damage: the log may have been altered. Investigate (readtrail verify) before using any figure below.',
  },
}

/** One answer the report used, under the name an analyst can re-run. */
export interface BannerAnswer {
  label: string
  provenance: Provenance
}

/** Summaries mostly open with their status in capitals; the others get it in front. */
function statusTag(p: Provenance): string {
  const word = p.status.toUpperCase()
  return p.summary.startsWith(word) ? '' : `[${word}] `
}

/** The verdict for the whole report, then every answer's own summary, verbatim. */
export function renderProvenanceBanner(answers: readonly BannerAnswer[]): SafeHtml {
  const status = worstStatus(answers.map((a) => a.provenance.status))
  const v = VERDICTS[status]
  const stateAt = answers.map((a) => a.provenance.verify_state_at).find((at) => at !== null) ?? null
  return html`<section class="banner ${status}" id="provenance" data-status="${status}" aria-label="Verification status">
<div class="verdict">${v.mark} ${v.headline}</div>
<div>${v.advice}${answers.some((a) => a.provenance.chains.length === 0) ? ' An answer with no matching events stands on no range: its line below says whether that absence is proven.' : ''}</div>
<div class="note">${stateAt ? `Verification state recorded at ${formatUtc(stateAt)}.` : 'The log has never been verified on this installation.'}</div>
<ul>${answers.map((a) => html`<li><strong>${a.label}</strong>: ${statusTag(a.provenance)}${a.provenance.summary}</li>`)}</ul>
</section>`
}
