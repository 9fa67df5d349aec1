import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AccessEvent } from '../../schemas/access-event.js'
import { GENESIS_CHECKPOINT, formatCheckpointLine, signCheckpoint } from '../../checkpoints/checkpoint.js'
import { loadPublicKey, loadSigningKey } from '../../checkpoints/keys.js'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { openStore, type Store } from '../../store/store.js'
import { runCli, testHome, type CliResult } from '../helpers/cli-process.js'
import { testLogger } from '../helpers/kafka.js'
import { seedChain } from '../helpers/seed-chain.js'
import { testStoreConfig } from '../helpers/store.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NIGHT = Date.UTC(2026, 10, 27, 1, 0) * 1000
const MINUTE = 60_000_000
const BURST = Date.UTC(2026, 10, 27, 4, 0) * 1000

/**
 * The scenario: clerk.marta's stolen credentials page through 3,000
 * applicants (60 reads × 50) and 60 documents from 203.0.113.7 at night;
 * the day before, marta read 5 applicants at work, and clerk.anna reads
 * during the day. Only the night is in the breach window.
 */
function scenario(i: number): Partial<AccessEvent> {
  if (i < 60) {
    return {
      occurred_at: NIGHT + i * 2 * MINUTE,
      principal_id: 'clerk.marta',
      client_ip: '203.0.113.7',
      table_name: 'applicants',
      columns: ['id', 'full_name', 'date_of_birth'],
      record_ids: Array.from({ length: 50 }, (_, k) => String(100_000 + i * 50 + k)),
      row_count: 50,
    }
  }
  if (i < 66) {
    const n = i - 60
    return {
      occurred_at: NIGHT + 30 * MINUTE + n * 5 * MINUTE,
      principal_id: 'clerk.marta',
      client_ip: '203.0.113.7',
      table_name: 'documents',
      columns: ['id', 'applicant_id', 'file_name'],
      record_ids: Array.from({ length: 10 }, (_, k) => `doc-${n * 10 + k}`),
      row_count: 10,
    }
  }
  if (i >= 80) {
    // A 98-second burst from another address: svc.export's 20 reads of 25 rows, 04:00:00 to 04:01:38.
    const k = i - 80
    return {
      occurred_at: BURST + Math.round((k * 98_000) / 19) * 1000,
      principal_id: 'svc.export',
      client_ip: '198.51.100.9',
      table_name: 'applicants',
      record_ids: Array.from({ length: 25 }, (_, n) => String(200_000 + k * 25 + n)),
      row_count: 25,
    }
  }
  if (i === 66) {
    // 09:30 UTC is 10:30 in Berlin: inside working hours.
    return { occurred_at: Date.UTC(2026, 10, 26, 9, 30) * 1000, principal_id: 'clerk.marta', client_ip: '192.0.2.20', record_ids: ['1', '2', '3', '4', '5'], row_count: 5 }
  }
  return { occurred_at: Date.UTC(2026, 10, 27, 10, i - 67) * 1000, principal_id: 'clerk.anna', client_ip: '192.0.2.10', record_ids: [String(i)], row_count: 1 }
}
const EVENTS = 100

/** A browser is part of what this test checks: without one it fails, it never skips. */
function requireChromium(): string {
  try {
    execFileSync('chromium', ['--version'], { stdio: 'pipe' })
    return 'chromium'
  } catch (cause) {
    throw new Error('chromium is not on PATH: run `bash scripts/ensure-chromium.sh` first (.ci/run does); the report test checks the HTML in a real browser and does not skip', { cause })
  }
}

/** The PDF check reads Chromium's output back with poppler (Debian's poppler-utils): missing, it fails, it never skips. */
function requirePoppler(): void {
  try {
    execFileSync('pdfinfo', ['-v'], { stdio: 'pipe' })
    execFileSync('pdftotext', ['-v'], { stdio: 'pipe' })
  } catch (cause) {
    throw new Error('pdfinfo/pdftotext are not on PATH: run `bash scripts/ensure-chromium.sh` first (it installs poppler-utils); the report test reads the printed PDF back and does not skip', { cause })
  }
}

describe('readtrail report (HTML, checked in headless Chromium)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-report-'))
  const outDir = mkdtempSync(join(tmpdir(), 'readtrail-report-out-'))
  const profile = mkdtempSync(join(tmpdir(), 'readtrail-chromium-'))
  const dir = ['--data-dir', dataDir, '--database', 'registry_audit']
  const breachParams = ['--param', 'principals=clerk.marta', '--param', 'from=2026-11-27T00:00:00Z', '--param', 'to=2026-11-27T06:00:00Z']
  let chromium: string
  afterAll(() => {
    for (const d of [dataDir, outDir, profile]) rmSync(d, { recursive: true, force: true })
  })

  /** The test process uses the store between CLI runs, never during one (one chDB owner per data dir). */
  async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const store = openStore(testStoreConfig('registry_audit', dataDir), { command: 'report test', logger: testLogger })
    try {
      await store.ensureSchema()
      return await fn(store)
    } finally {
      await store.close()
    }
  }

  beforeAll(async () => {
    chromium = requireChromium()
    requirePoppler()
    const events = await withStore((store) => seedChain(store, 'readtrail.access/0', EVENTS, scenario))
    signHead('readtrail.access/0', events)
  })

  /**
   * Signs the seeded chain's head into the checkpoint log, as `consume`
   * would: only rows a checkpoint covers can be verified (the rest are
   * unsigned, exit 5).
   */
  function signHead(chainId: string, events: AccessEvent[]): void {
    // seedChain's ingest time: the head hash covers it.
    const { head } = linkEntries(emptyChain(chainId), events.map((event, i) => ({ event, offset: BigInt(i), schemaVersion: 1 })), Date.UTC(2026, 10, 27, 12) * 1000)
    const key = loadSigningKey(join(testHome(), 'keys', 'checkpoint.key'))
    const body = {
      v: 1 as const,
      database: 'registry_audit',
      chain_id: chainId,
      index: 1,
      seq: head.seq,
      hash: head.hash.toString('hex'),
      kafka_offset: String(head.lastOffset ?? 0n),
      signed_at: new Date().toISOString(),
      prev: GENESIS_CHECKPOINT,
      key_id: key.keyId,
    }
    appendFileSync(join(testHome(), 'checkpoints.jsonl'), `${formatCheckpointLine(signCheckpoint(body, key.privateKey))}\n`)
  }

  /** Chromium's serialisation of the DOM it built from the file: what a reader's browser makes of it. */
  function browserDom(file: string): string {
    return execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--dump-dom', `file://${file}`], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  }

  /**
   * The file printed by Chromium as a reader's browser prints it (its own
   * header and footer left on: the report's page margin boxes must replace
   * them), then read back with poppler: page count and each page's text.
   */
  function printToPdf(file: string): { pages: number; text: string[] } {
    const pdf = file.replace(/\.html$/, '.pdf')
    execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, `--print-to-pdf=${pdf}`, `file://${file}`], { stdio: 'pipe', timeout: 120_000 })
    const pages = Number(/^Pages:\s+(\d+)$/m.exec(execFileSync('pdfinfo', [pdf], { encoding: 'utf8' }))?.[1])
    const text = Array.from({ length: pages }, (_, i) => execFileSync('pdftotext', ['-layout', '-f', String(i + 1), '-l', String(i + 1), pdf, '-'], { encoding: 'utf8' }))
    return { pages, text }
  }

  async function report(kind: string, params: string[], out: string): Promise<CliResult> {
    const r = await runCli(['report', kind, ...params, '--out', out, ...dir])
    // Written (whatever the verdict): the path, alone, on stdout.
    if (r.code === 0 || r.code === 3 || r.code === 4) expect(r.stdout.trim()).toBe(out)
    return r
  }

  it('writes an unverified breach report (exit 3) before the log was verified', async () => {
    const out = join(outDir, 'breach-unverified.html')
    const r = await report('breach-scope', breachParams, out)
    expect(r.code, r.stderr).toBe(3)
    const dom = browserDom(out)
    expect(dom).toMatch(/<section class="banner unverified" id="provenance" data-status="unverified"/)
    expect(dom).toContain('UNVERIFIED — NOT YET PROVEN COMPLETE OR UNTOUCHED')
  })

  it('after verify: the breach report shows the scope, every figure, the chart, and renders to a real screenshot (exit 0)', async () => {
    const verify = await runCli(['verify', '--no-kafka-checkpoints', ...dir])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    const out = join(outDir, 'breach.html')
    const r = await report('breach-scope', [...breachParams, '--case-id', 'INC-2026-0417', '--author', "Dana O'Neil"], out)
    expect(r.code, r.stderr).toBe(0)
    expect(statSync(out).mode & 0o777).toBe(0o600)

    const dom = browserDom(out)
    expect(dom).toContain('data-status="verified"')
    expect(byTable(tableRows(dom, 'scope-table'))).toEqual([
      expect.objectContaining({ database: 'registry', table: 'applicants', distinct_records: '3,000', reads: '60', rows_read: '3,000', principals: 'clerk.marta', columns: 'date_of_birth, full_name, id', first_access: '2026-11-27 01:00:00', last_access: '2026-11-27 02:58:00' }),
      expect.objectContaining({ database: 'registry', table: 'documents', distinct_records: '60', reads: '6', rows_read: '60', principals: 'clerk.marta' }),
    ])
    const records = tableRows(dom, 'records-table')
    expect(records).toHaveLength(500)
    expect(records.every((row) => /^(\d+|doc-\d+)$/.test(row['record_id']!))).toBe(true)
    // One account read them all: said once above the table, not in 500 rows.
    expect(dom).toMatch(/<p class="common" id="records-table-common">In every row below: .*<span data-col="principals"><strong>Accounts<\/strong> clerk.marta<\/span>/)
    expect(dom).toContain('500 of 3,060 records shown.')
    expect(dom).toContain(`READTRAIL_HOME=${testHome()} readtrail query breach-records --format csv --param limit=0 --param principals=clerk.marta`)
    expect(dom).not.toContain('clerk.anna')
    // The inline chart survived parsing as SVG, with its text alternative.
    expect(dom).toMatch(/<svg class="timeline" role="img" aria-label="Rows read in scope, by table: 3,060 rows read from 2026-11-27 00:00 to 2026-11-27 06:00 UTC/)
    expect(dom.match(/<rect [^>]*fill="#0072B2"><title>/g)?.length).toBeGreaterThan(20)

    // The header an analyst signs: case, author, what the filter means, the zone, the key, the command.
    expect(dom).toContain('<dd id="case-id">INC-2026-0417</dd>')
    expect(dom).toContain(`<dd id="author">Dana O'Neil</dd>`)
    expect(dom).toContain('A read is in scope when it falls inside the window AND its account is one listed.')
    expect(dom).toContain('<dd id="time-zone">UTC: every time in this report.</dd>')
    const keyId = loadPublicKey(join(testHome(), 'keys', 'checkpoint.key.pub')).keyId
    expect(dom).toContain(`<code class="key-id">${keyId}</code>`)
    expect(decode(/<code class="cmd" id="reproduce">([\s\S]*?)<\/code>/.exec(dom)![1]!)).toBe(
      `READTRAIL_HOME=${testHome()} readtrail report breach-scope --param principals=clerk.marta --param from=2026-11-27T00:00:00Z --param to=2026-11-27T06:00:00Z ` +
        `--case-id INC-2026-0417 --author 'Dana O'\\''Neil' --database registry_audit --data-dir ${dataDir}`,
    )
    // Figures in print, not in tooltips: the table under the chart adds up to the scope.
    const periods = tableRows(dom, 'timeline-table')
    expect(periods.reduce((n, row) => n + Number(row['rows_read']!.replace(/,/g, '')), 0)).toBe(3060)
    expect(dom).toMatch(/<g class="values"><text [^>]*>[\d,]+<\/text>/)

    const png = join(outDir, 'breach.png')
    execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--window-size=1280,2000', `--screenshot=${png}`, `file://${out}`], { stdio: 'pipe', timeout: 120_000 })
    const image = readFileSync(png)
    expect(image.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    expect([image.readUInt32BE(16), image.readUInt32BE(20)]).toEqual([1280, 2000])
    // A blank or error page compresses to a few kilobytes; text, tables and bars do not.
    expect(image.length).toBeGreaterThan(60_000)
  })

  it('prints the 500-record breach report on few pages, each numbered and carrying the case', () => {
    const { pages, text } = printToPdf(join(outDir, 'breach.html'))
    // 8 pages with Debian's Chromium 156 (one line per record, 68 to a page). Before the print
    // rules were made compact these 500 rows took 20 pages, and wider rows (more columns, subjects,
    // two accounts) 47; the demo store printed 57.
    expect(pages).toBeLessThanOrEqual(9)
    text.forEach((page, i) => {
      expect(page).toContain(`Page ${i + 1} of ${pages}`)
      expect(page).toContain('Case INC-2026-0417')
      expect(page).toContain("Prepared by Dana O'Neil")
      // The browser's own header and footer (date, file URL) are replaced by the report's.
      expect(page).not.toContain('file://')
    })
    const all = text.join('\n')
    expect(all).toContain(loadPublicKey(join(testHome(), 'keys', 'checkpoint.key.pub')).keyId)
    expect(all).toMatch(/Sign-off/)
    expect(all).toMatch(/READTRAIL_HOME=/)
    expect(text.at(-1)).toMatch(/Generated by readtrail at/)
  })

  it('draws a 98-second breach in one-second bars, not one one-hour bar (regression)', async () => {
    const out = join(outDir, 'breach-burst.html')
    const r = await report('breach-scope', ['--param', 'ips=198.51.100.9', '--param', 'from=2026-11-27T00:00:00Z', '--param', 'to=2026-11-28T00:00:00Z'], out)
    expect(r.code, r.stderr).toBe(0)
    const dom = browserDom(out)
    expect(dom).toContain('breach-timeline, bucket 1s')
    expect(dom).toContain('one bar = 1 second')
    expect(dom).toMatch(/the chart shows 2026-11-27 03:59:\d\d UTC — 2026-11-27 04:0[12]:\d\d UTC/)
    expect(dom).toContain('A read is in scope when it falls inside the window AND its client IP is one listed.')
    const periods = tableRows(dom, 'timeline-table')
    expect(periods.length).toBeGreaterThanOrEqual(10)
    expect(periods.reduce((n, row) => n + Number(row['rows_read']!.replace(/,/g, '')), 0)).toBe(500)
    expect(periods[0]).toEqual(expect.objectContaining({ from: '2026-11-27 04:00:00' }))
  })

  it('the principal report sums the timeline per table, isolates the night reads as off-hours, and lists 500 records', async () => {
    const out = join(outDir, 'principal.html')
    const r = await report('principal', ['--param', 'principal=clerk.marta'], out)
    expect(r.code, r.stderr).toBe(0)
    const dom = browserDom(out)
    expect(dom).toContain('data-status="verified"')
    expect(tableRows(dom, 'tables-table')).toEqual([
      expect.objectContaining({ table: 'applicants', reads: '61', rows_read: '3,005' }),
      expect.objectContaining({ table: 'documents', reads: '6', rows_read: '60' }),
    ])
    expect(byTable(tableRows(dom, 'off-hours-table'))).toEqual([
      expect.objectContaining({ table: 'applicants', reads: '60', rows_read: '3,000' }),
      expect.objectContaining({ table: 'documents', reads: '6', rows_read: '60' }),
    ])
    expect(tableRows(dom, 'records-table')).toHaveLength(500)
    expect(dom).toContain('The first 500 records shown; the account touched more.')
    expect(dom).toMatch(/<svg class="timeline" role="img" aria-label="Rows read by clerk.marta, by table: 3,065 rows read/)
    // The zone is said, not assumed: the default, and how to change it.
    expect(dom).toContain('Working hours (and so off-hours reads) are judged in Europe/Berlin')
    expect(dom).toContain('Reads outside working hours (Mon–Fri 08:00–18:00 Europe/Berlin)')
    expect(decode(/<code class="cmd" id="reproduce">([\s\S]*?)<\/code>/.exec(dom)![1]!)).toContain('readtrail report principal --param principal=clerk.marta --tz Europe/Berlin')
  })

  it('the principal report judges working hours in the --tz zone', async () => {
    const out = join(outDir, 'principal-new-york.html')
    const r = await report('principal', ['--param', 'principal=clerk.marta', '--tz', 'America/New_York'], out)
    expect(r.code, r.stderr).toBe(0)
    const dom = browserDom(out)
    expect(dom).toContain('Reads outside working hours (Mon–Fri 08:00–18:00 America/New_York)')
    // 09:30 UTC is 04:30 in New York: the day read is off-hours there too.
    expect(byTable(tableRows(dom, 'off-hours-table'))).toEqual([
      expect.objectContaining({ table: 'applicants', reads: '61', rows_read: '3,005' }),
      expect.objectContaining({ table: 'documents', reads: '6', rows_read: '60' }),
    ])
    const refused = await runCli(['report', 'principal', '--param', 'principal=clerk.marta', '--tz', 'Mars/Olympus', '--out', join(outDir, 'mars.html'), ...dir])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/USAGE: --tz must be an IANA time zone/)
    expect(readdirSync(outDir)).not.toContain('mars.html')
  })

  it('names the file readtrail-<kind>-<UTC time>.html in the working directory by default', async () => {
    const r = await runIn(outDir, ['report', 'principal', '--param', 'principal=clerk.anna', ...dir])
    expect(r.code, r.stderr).toBe(0)
    const name = readdirSync(outDir).find((f) => /^readtrail-principal-\d{8}T\d{6}Z\.html$/.test(f))
    expect(name).toBeDefined()
    expect(r.stdout.trim()).toBe(join(outDir, name!))
    expect(tableRows(browserDom(join(outDir, name!)), 'tables-table')).toEqual([expect.objectContaining({ table: 'applicants', reads: '13', rows_read: '13' })])
  })

  it('refuses an unknown report kind with USAGE (exit 2) and writes nothing', async () => {
    const out = join(outDir, 'nothing.html')
    const r = await runCli(['report', 'everything', '--out', out, ...dir])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^readtrail: USAGE: report kind must be one of breach-scope, principal/)
    expect(readdirSync(outDir)).not.toContain('nothing.html')
  })

  it('after damage is found, the report says FAILED VERIFICATION and exits 4', async () => {
    await withStore((store) =>
      store.client.command({
        query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'nobody' WHERE seq = 3`,
        clickhouse_settings: { mutations_sync: '2' },
      }),
    )
    const verify = await runCli(['verify', '--no-kafka-checkpoints', ...dir])
    expect(verify.code, verify.stdout).toBe(1)
    const out = join(outDir, 'breach-failed.html')
    const r = await report('breach-scope', breachParams, out)
    expect(r.code, r.stderr).toBe(4)
    const dom = browserDom(out)
    expect(dom).toMatch(/<section class="banner failed" id="provenance" data-status="failed"/)
    expect(dom).toContain('FAILED VERIFICATION — DO NOT RELY ON THESE FIGURES')
  })
})

/** Rows of a report table as `data-col` → cell text, from Chromium's serialised DOM. */
function tableRows(dom: string, id: string): Record<string, string>[] {
  const table = new RegExp(`<table class="data" id="${id}">([\\s\\S]*?)</table>`).exec(dom)?.[1]
  if (table === undefined) throw new Error(`no table#${id} in the DOM`)
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)?.[1] ?? ''
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((tr) =>
    Object.fromEntries([...tr[1]!.matchAll(/<td[^>]*data-col="(\w+)"[^>]*>([\s\S]*?)<\/td>/g)].map((td) => [td[1]!, decode(td[2]!.replace(/<[^>]+>/g, ''))])),
  )
}

/** Row order is each query's business; compare per table. */
function byTable(rows: Record<string, string>[]): Record<string, string>[] {
  return [...rows].sort((a, b) => (a['table']! < b['table']! ? -1 : 1))
}

function decode(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
}

/** `readtrail <args>` with another working directory (runCli runs in the repository root). */
function runIn(cwd: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], {
      cwd,
      env: { ...process.env, READTRAIL_LOG_LEVEL: 'warn', READTRAIL_HOME: testHome() },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}
