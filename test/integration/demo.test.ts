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
    // Run again on its own store: it starts from scratch.
    const again = await runCli(['demo', '--data-dir', dataDir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(',') })
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/72 rows in 3 chains verified/)
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
