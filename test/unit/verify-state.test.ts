import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateKeyFiles, loadSigningKey } from '../../checkpoints/keys.js'
import { VerificationError } from '../../integrity/errors.js'
import type { Finding, VerificationReport } from '../../integrity/report.js'
import { loadOrCreateVerifierKey, nextVerifyState, readVerifyState, writeVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { thrownBy } from '../helpers/thrown.js'

const dir = mkdtempSync(join(tmpdir(), 'readtrail-verify-state-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
generateKeyFiles(join(dir, 'verifier.key'))
generateKeyFiles(join(dir, 'other.key'))
const key = loadSigningKey(join(dir, 'verifier.key'))
const otherKey = loadSigningKey(join(dir, 'other.key'))

const A = 'orders/0'

function report(over: Partial<VerificationReport> = {}): VerificationReport {
  return {
    mode: 'in-db',
    incremental: false,
    ok: true,
    database: 'audit',
    rows_verified: 100,
    views_checked: true,
    chains: [{ chain_id: A, rows: 100, first_seq: 1, last_seq: 100, head_hash: 'ab'.repeat(32), unsigned_from_seq: null, unsigned_rows: 0, checkpoint: { index: 4, seq: 90, hash: 'cd'.repeat(32), signed_at: '2026-11-27T12:00:00.000Z' } }],
    checkpoints: { file: 'checkpoints.jsonl', topic: 'readtrail.access.checkpoints', total: 4, valid: 4, key_id: null },
    producers: { checked: 1, in_flight: [] },
    findings: [],
    findings_truncated: false,
    warnings: [],
    checkpoint_high: {},
    kafka_checked: false,
    started_at: '2026-11-27T12:00:00.000Z',
    duration_ms: 1,
    ...over,
  }
}
const damagedBy = (findings: Finding[], over: Partial<VerificationReport> = {}) => report({ ok: false, findings, ...over })
const finding = (kind: Finding['kind'], seq: number, chain_id = A): Finding => ({ chain_id, seq, kind, detail: 'x' })

describe('signed verify state', () => {
  const path = join(dir, 'state.json')
  const state = nextVerifyState(null, report(), {})

  it('reads back what it signed', () => {
    writeVerifyState(path, state, key)
    expect(readVerifyState(path, 'audit', key)).toEqual(state)
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    expect(file).toMatchObject({ format: 'readtrail-verify-state-v2', key_id: key.keyId })
    expect(typeof file['sig']).toBe('string')
  })

  it('is indifferent to key order and indentation (canonical bytes)', () => {
    writeVerifyState(path, state, key)
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    const reordered = Object.fromEntries(Object.entries(file).reverse())
    writeFileSync(path, JSON.stringify(reordered))
    expect(readVerifyState(path, 'audit', key)).toEqual(state)
  })

  it('refuses an edited state: a failed run flipped to ok, a verified_through raised', () => {
    const failed = nextVerifyState(state, damagedBy([finding('hash_mismatch', 7)]), {})
    writeVerifyState(path, failed, key)
    const file = JSON.parse(readFileSync(path, 'utf8')) as VerifyState & { sig: string }
    file.chains[A]!.failures = []
    file.chains[A]!.last_run!.ok = true
    file.chains[A]!.verified_through = 100
    writeFileSync(path, JSON.stringify(file, null, 2))
    const err = thrownBy(VerificationError, () => readVerifyState(path, 'audit', key))
    expect(err.code).toBe('VERIFY_STATE_UNTRUSTED')
    expect(err.message).toMatch(/edited/)
  })

  it('refuses an unsigned v1 state, a state without its signature, and one signed by another key', () => {
    writeFileSync(path, JSON.stringify({ format: 'readtrail-verify-state-v1', database: 'audit', updated_at: 'x', chains: {}, producers: {} }))
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', key)).code).toBe('VERIFY_STATE_UNTRUSTED')
    writeFileSync(path, JSON.stringify(state))
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', key)).code).toBe('VERIFY_STATE_UNTRUSTED')
    writeVerifyState(path, state, otherKey)
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', key)).message).toMatch(/not the verifier key/)
    // Re-signed by the attacker's key but claiming the verifier's key id.
    const forged = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    writeFileSync(path, JSON.stringify({ ...forged, key_id: key.keyId }))
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', key)).code).toBe('VERIFY_STATE_UNTRUSTED')
    // No public key to check it with: not believed either.
    writeVerifyState(path, state, key)
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', null)).code).toBe('VERIFY_STATE_UNTRUSTED')
  })

  it('names another database in VERIFY_STATE_INVALID, and a missing file is null', () => {
    writeVerifyState(path, state, key)
    const err = thrownBy(VerificationError, () => readVerifyState(path, 'other', key))
    expect([err.code, err.details?.['database']]).toEqual(['VERIFY_STATE_INVALID', 'audit'])
    expect(readVerifyState(join(dir, 'none.json'), 'audit', key)).toBeNull()
  })
})

describe('nextVerifyState: only a run that covered a failed check clears it', () => {
  const clean = nextVerifyState(null, report(), {})
  const viewFailure = nextVerifyState(clean, damagedBy([finding('view_mismatch', 40)]), {})

  it('verified means signed: verified through min(last seq, newest matching checkpoint)', () => {
    expect(clean.chains[A]).toMatchObject({ verified_through: 90, verified_at: '2026-11-27T12:00:00.000Z', anchor: { index: 4, seq: 90 }, failures: [] })
    expect(clean.last_full_at).toBe('2026-11-27T12:00:00.000Z')
  })

  it('a --skip-views run does not clear a view failure found earlier', () => {
    expect(viewFailure.chains[A]?.failures).toMatchObject([{ check: 'views', from_seq: 40, kinds: ['view_mismatch'] }])
    const skipViews = nextVerifyState(viewFailure, report({ views_checked: false, started_at: '2026-11-27T14:00:00.000Z' }), {})
    expect(skipViews.chains[A]?.failures).toMatchObject([{ check: 'views', from_seq: 40 }])
    expect(skipViews.chains[A]?.last_run?.ok).toBe(false)
    expect(skipViews.chains[A]?.verified_through).toBe(0)
    // A run that checked the views again, and found them whole, clears it.
    const full = nextVerifyState(skipViews, report({ started_at: '2026-11-27T15:00:00.000Z' }), {})
    expect(full.chains[A]).toMatchObject({ failures: [], verified_through: 90 })
  })

  it('a rollup failure left open by a release that still had the rollup tables is cleared by the next run that checks the views', () => {
    const old = structuredClone(viewFailure)
    old.chains[A]!.failures = old.chains[A]!.failures.map((f) => ({ ...f, check: 'rollups' as const, kinds: ['rollup_mismatch'] }))
    const skipViews = nextVerifyState(old, report({ views_checked: false, started_at: '2026-11-27T14:00:00.000Z' }), {})
    expect(skipViews.chains[A]?.failures).toMatchObject([{ check: 'rollups', from_seq: 40 }])
    const full = nextVerifyState(skipViews, report({ started_at: '2026-11-27T15:00:00.000Z' }), {})
    expect(full.chains[A]).toMatchObject({ failures: [], verified_through: 90 })
  })

  it('an incremental run clears only failures within the span it re-checked', () => {
    const rowFailure = nextVerifyState(clean, damagedBy([finding('deleted_rows', 20)]), {})
    const incremental = (first_seq: number) =>
      report({ incremental: true, views_checked: false, chains: [{ chain_id: A, rows: 100 - first_seq + 1, first_seq, last_seq: 100, head_hash: 'ab'.repeat(32), unsigned_from_seq: null, unsigned_rows: 0, checkpoint: { index: 4, seq: 90, hash: 'cd'.repeat(32), signed_at: 'x' } }] })
    const after = nextVerifyState(rowFailure, incremental(50), {})
    expect(after.chains[A]?.failures).toMatchObject([{ check: 'rows', from_seq: 20 }])
    expect(after.last_full_at).toBe(rowFailure.last_full_at)
    // An incremental run that started at or below the damage looked at it.
    expect(nextVerifyState(rowFailure, incremental(10), {}).chains[A]?.failures).toEqual([])
    // Producer holes are found by full runs only.
    const producer = nextVerifyState(clean, damagedBy([finding('producer_gap', 60)]), {})
    expect(nextVerifyState(producer, incremental(1), {}).chains[A]?.failures).toMatchObject([{ check: 'producers' }])
  })

  it('checkpoint failures found with both copies are not cleared by a file-only run; none clears nothing', () => {
    const rolledBack = nextVerifyState(clean, damagedBy([finding('checkpoint_log_rolled_back', 80)]), {})
    const fileOnly = nextVerifyState(rolledBack, report({ checkpoints: { file: 'f', topic: null, total: 1, valid: 1, key_id: null } }), {})
    expect(fileOnly.chains[A]?.failures).toMatchObject([{ check: 'checkpoints', sources: 'both' }])
    const none = nextVerifyState(rolledBack, report({ checkpoints: { file: null, topic: null, total: 0, valid: 0, key_id: null } }), {})
    expect(none.chains[A]?.failures).toHaveLength(1)
    expect(nextVerifyState(fileOnly, report(), {}).chains[A]?.failures).toEqual([])
  })

  it('kafka offset findings are cleared only by a run that checked the Kafka log', () => {
    const gap = nextVerifyState(clean, damagedBy([finding('offset_gap', 30)], { kafka_checked: true }), {})
    expect(gap.chains[A]?.failures).toMatchObject([{ check: 'kafka', from_seq: 30 }])
    expect(nextVerifyState(gap, report({ kafka_checked: false }), {}).chains[A]?.failures).toMatchObject([{ check: 'kafka' }])
    expect(nextVerifyState(gap, report({ kafka_checked: true }), {}).chains[A]?.failures).toEqual([])
  })

  it('a source-wide finding keeps every chain from being called clean until a full run covers it', () => {
    const unreadable = nextVerifyState(clean, damagedBy([finding('checkpoint_unreadable', 0, '(checkpoint file)')]), {})
    expect(unreadable.chains[A]?.last_run?.ok).toBe(false)
    expect(unreadable.chains['(checkpoint file)']?.failures).toHaveLength(1)
    expect(nextVerifyState(unreadable, report(), {}).chains['(checkpoint file)']?.failures).toEqual([])
  })

  it('a truncated findings list leaves no chain of the run clean', () => {
    const truncated = nextVerifyState(clean, report({ ok: false, findings_truncated: true }), {})
    expect(truncated.chains[A]?.failures).toMatchObject([{ check: 'rows', kinds: ['findings_truncated'] }])
  })

  it('keeps the highest checkpoint index and seq ever seen, never lowering them', () => {
    const withHigh = (high: Record<string, { index: number; seq: number }>) => report({ checkpoint_high: high })
    const up = nextVerifyState(clean, withHigh({ [A]: { index: 6, seq: 120 } }), {})
    expect(up.chains[A]?.checkpoint_high).toEqual({ index: 6, seq: 120 })
    const down = nextVerifyState(up, withHigh({ [A]: { index: 2, seq: 40 } }), {})
    expect(down.chains[A]?.checkpoint_high).toEqual({ index: 6, seq: 120 })
  })
})

describe('loadOrCreateVerifierKey', () => {
  it('makes the key pair on first use (0600), then loads the same one', () => {
    const paths = { keyPath: join(dir, 'home', 'verifier.key'), publicKeyPath: join(dir, 'home', 'verifier.key.pub') }
    const made = loadOrCreateVerifierKey(paths)
    expect(statSync(paths.keyPath).mode & 0o777).toBe(0o600)
    expect(loadOrCreateVerifierKey(paths).keyId).toBe(made.keyId)
  })

  it('refuses a public key whose private half is gone, and halves that do not belong together', () => {
    const lonely = { keyPath: join(dir, 'gone.key'), publicKeyPath: join(dir, 'verifier.key.pub') }
    expect(thrownBy(VerificationError, () => loadOrCreateVerifierKey(lonely)).code).toBe('VERIFY_STATE_UNTRUSTED')
    const mixed = { keyPath: join(dir, 'other.key'), publicKeyPath: join(dir, 'verifier.key.pub') }
    expect(thrownBy(VerificationError, () => loadOrCreateVerifierKey(mixed)).message).toMatch(/does not belong/)
  })
})
