import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { z } from 'zod'
import { VerificationError } from './errors.js'
import type { VerificationReport } from './report.js'

const hex32 = z.string().regex(/^[0-9a-f]{64}$/)

/**
 * What verification remembers between runs, outside ClickHouse: per chain
 * the newest signed checkpoint whose row verified (where an incremental run
 * starts) and the range the last run covered and its verdict (what saved
 * queries cite as provenance); per producer how far its sequence is complete.
 */
export const VerifyState = z
  .object({
    format: z.literal('readtrail-verify-state-v1'),
    database: z.string().min(1),
    updated_at: z.string(),
    chains: z.record(
      z.string(),
      z
        .object({
          /** Incremental runs start here: the checkpoint is re-checked against its row, rows after it are verified. */
          anchor: z.object({ index: z.number().int().min(1), seq: z.number().int().min(1), hash: hex32 }).strict().nullable(),
          /** Rows 1..verified_through passed every check as of `at` (0: never). */
          verified_through: z.number().int().min(0),
          last_run: z
            .object({ ok: z.boolean(), first_seq: z.number().int().min(0), last_seq: z.number().int().min(0), at: z.string(), mode: z.string(), incremental: z.boolean() })
            .strict(),
        })
        .strict(),
    ),
    producers: z.record(z.string(), z.number().int().min(0)),
  })
  .strict()
export type VerifyState = z.infer<typeof VerifyState>

/** The state for `database`, or null when none was recorded yet. */
export function readVerifyState(path: string, database: string): VerifyState | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new VerificationError('VERIFY_STATE_INVALID', `cannot read the verify state ${path}: ${(cause as Error).message}`, { cause, details: { path } })
  }
  let parsed: VerifyState
  try {
    parsed = VerifyState.parse(JSON.parse(text))
  } catch (cause) {
    throw new VerificationError('VERIFY_STATE_INVALID', `${path} is not a readtrail verify state file`, { cause, details: { path } })
  }
  if (parsed.database !== database) {
    throw new VerificationError('VERIFY_STATE_INVALID', `${path} records database ${parsed.database}, not ${database}`, { details: { path, database: parsed.database } })
  }
  return parsed
}

/**
 * The state after `report`: a chain with no finding moves its anchor to the
 * newest checkpoint its rows matched; a damaged chain keeps its old anchor,
 * so the next incremental run looks at the damage again.
 */
export function nextVerifyState(previous: VerifyState | null, report: VerificationReport, producerThrough: Record<string, number>): VerifyState {
  const damaged = new Set(report.findings.map((f) => f.chain_id))
  const chains: VerifyState['chains'] = { ...(previous?.chains ?? {}) }
  for (const c of report.chains) {
    const before = chains[c.chain_id]
    const ok = !damaged.has(c.chain_id) && report.ok
    chains[c.chain_id] = {
      anchor: ok && c.checkpoint ? { index: c.checkpoint.index, seq: c.checkpoint.seq, hash: c.checkpoint.hash } : (before?.anchor ?? null),
      verified_through: ok ? c.last_seq : report.incremental ? (before?.verified_through ?? 0) : 0,
      last_run: { ok, first_seq: c.first_seq, last_seq: c.last_seq, at: report.started_at, mode: report.mode, incremental: report.incremental },
    }
  }
  for (const chainId of damaged) {
    const before = chains[chainId]
    if (before && !report.chains.some((c) => c.chain_id === chainId)) chains[chainId] = { ...before, last_run: { ...before.last_run, ok: false, at: report.started_at } }
  }
  return {
    format: 'readtrail-verify-state-v1',
    database: report.database,
    updated_at: new Date().toISOString(),
    chains,
    producers: { ...(previous?.producers ?? {}), ...producerThrough },
  }
}

/** Replaces the file atomically (write, fsync, rename): a crash leaves the old state or the new, never half. */
export function writeVerifyState(path: string, state: VerifyState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}
