import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli-process.js'
import { TEST_BROKERS } from '../helpers/kafka.js'

describe('readtrail demo (the README main job)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-demo-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('names exactly the 5,000 scraped applicants, both readers of the shared record, and verifies', async () => {
    const r = await runCli(['demo', '--data-dir', dataDir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('72 audited reads published')
    expect(r.stdout).toContain('72 events chained into ClickHouse')
    expect(r.stdout).toMatch(/5000 applicant records, ids 104001\.\.109000/)
    expect(r.stdout).toMatch(/Pattern: 5000 records between .* records\/minute/)
    const who = r.stdout.slice(r.stdout.indexOf('Q2'), r.stdout.indexOf('readtrail verify'))
    expect(who).toContain('clerk.marta')
    expect(who).toContain('203.0.113.66')
    expect(who).toContain('clerk.anna')
    expect(who).toContain('(2 rows)')
    expect(r.stdout).toContain('INTACT')
    expect(r.stdout).toMatch(/72 rows in 3 chains verified/)
    const scope = r.stdout.slice(r.stdout.indexOf('Q3'), r.stdout.indexOf('Q4'))
    expect(scope).toMatch(/admissions\s+applicants\s+5000\s+5000\s/)
    expect(scope).toContain('provenance: VERIFIED')
    const bulk = r.stdout.slice(r.stdout.indexOf('Q4'), r.stdout.indexOf('Q5'))
    expect(bulk).toMatch(/clerk\.marta\s+threshold/)
    expect(bulk).not.toContain('clerk.anna')
    expect(bulk).toContain('provenance: VERIFIED')
    expect(r.stdout).toMatch(/Q5 {2}Evidence for the regulator: .*\n.*PROVED offline/)
    // Part 2 (issue 14): the guard refuses the scraper after its budget; the
    // psql read no hook saw is the one unaudited read; verify accounts for
    // every database-side read of the table.
    const part2 = r.stdout.slice(r.stdout.indexOf('Part 2'))
    expect(part2).toMatch(/Scraper pages of 100: 2 served, 6 refused with EXTRACTION_LIMIT/)
    expect(part2).toContain('Database-audit reader: 14 pgAudit entries')
    const q6 = part2.slice(part2.indexOf('Q6'), part2.indexOf('Q7'))
    expect(q6).toMatch(/admissions\s+postgres\s+127\.0\.0\.1\s+psql\s+public\.applicants\s+1\s/)
    expect(q6).toContain('(1 rows)')
    const q7 = part2.slice(part2.indexOf('Q7'))
    expect(q7).toMatch(/refuse\s+clerk\.marta\s+applicants\s+applicant-records\s+60\s+250\s+300\s+100/)
    expect(q7).toContain('6 reads by clerk.marta recorded with outcome denied, naming the 600 records')
    expect(part2).toContain('UNAUDITED: database admissions: 14 database-side reads, 1 unmatched')
    expect(part2).toMatch(/db_audit_log chain \S+\.db-audit\/0: seq 1\.\.14 \(14 rows\), signed through seq 14/)
    // Run again on its own store: it starts from scratch.
    const again = await runCli(['demo', '--data-dir', dataDir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') })
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/72 rows in 3 chains verified/)
    // A second run starts part 2 afresh too: only its own statements.
    expect(again.stdout).toContain('UNAUDITED: database admissions: 14 database-side reads, 1 unmatched')
  })

  it('refuses to wipe a directory that is not a demo store', async () => {
    const precious = mkdtempSync(join(tmpdir(), 'readtrail-precious-'))
    try {
      writeFileSync(join(precious, 'audit-log-of-record'), 'do not delete')
      const r = await runCli(['demo', '--data-dir', precious], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') })
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('refusing to wipe')
      expect(readFileSync(join(precious, 'audit-log-of-record'), 'utf8')).toBe('do not delete')
    } finally {
      rmSync(precious, { recursive: true, force: true })
    }
  })
})
