import { sign, verify, type KeyObject } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { z } from 'zod'
import { generateKeyFiles, loadPublicKey, loadSigningKey } from '../checkpoints/keys.js'
import type { Logger } from '../common/logger.js'
import { VerificationError } from './errors.js'
import { ReadtrailError } from '../common/errors.js'
import { replaceFileSync } from '../common/atomic-file.js'
import type { AcknowledgedFinding, Finding, FindingKind, VerificationReport } from './report.js'

const hex32 = z.string().regex(/^[0-9a-f]{64}$/)

/**
 * The checks a run can cover. A failure remembers which check found it, and
 * only a later run that covered that check (over the failure's span) may
 * clear it: a `--skip-views` or incremental pass must not launder damage it
 * never looked at.
 *
 * 'rollups' names failures of the principal_hours / principal_days tables,
 * which stores no longer have (store/ddl.ts drops them). A state signed
 * before then may still hold one open: it stays readable, and the next run
 * that checks the views clears it, since nothing finds it again.
 */
export const VerifyCheck = z.enum(['rows', 'checkpoints', 'views', 'rollups', 'producers', 'kafka', 'dead_lettered'])
export type VerifyCheck = z.infer<typeof VerifyCheck>

/**
 * Checks whose open failures damage no stored row, so they neither fail
 * answers (queries/provenance.ts) nor take a chain's verified range away: a
 * dead-lettered producer hole is an event the writer refused, with its
 * signed dead letter, not a row that was there and is gone. The chain
 * checks (rows, checkpoints, Kafka offsets) prove every stored row and every
 * skipped offset independently of it. It stays open, and in every report,
 * until a covering run no longer finds it or an operator acknowledges it.
 */
const ANSWER_NEUTRAL: ReadonlySet<VerifyCheck> = new Set(['dead_lettered'])

/** Whether an open failure can make an answer wrong (and so fails it). */
export function affectsAnswers(failure: Pick<OpenFailure, 'check'>): boolean {
  return !ANSWER_NEUTRAL.has(failure.check)
}

// Every finding kind belongs to exactly one check; a Record (not a default)
// makes a new kind fail to compile until someone decides who may clear it.
const CHECK_OF: Record<FindingKind, VerifyCheck> = {
  hash_mismatch: 'rows',
  rewritten_row: 'rows',
  broken_link: 'rows',
  deleted_rows: 'rows',
  inserted_row: 'rows',
  duplicate_row: 'rows',
  forked: 'rows',
  reordered: 'rows',
  unknown_chain: 'rows',
  truncated: 'checkpoints',
  checkpoint_mismatch: 'checkpoints',
  checkpoint_invalid: 'checkpoints',
  checkpoint_unreadable: 'checkpoints',
  checkpoint_chain_broken: 'checkpoints',
  checkpoint_log_rolled_back: 'checkpoints',
  checkpoint_conflict: 'checkpoints',
  checkpoint_copy_missing: 'checkpoints',
  checkpoint_regressed: 'checkpoints',
  checkpoint_topic_weakened: 'checkpoints',
  view_mismatch: 'views',
  query_table_altered: 'views',
  producer_gap: 'producers',
  producer_duplicate: 'producers',
  dead_lettered: 'dead_lettered',
  offset_invalid: 'kafka',
  message_incomplete: 'kafka',
  offset_gap: 'kafka',
  dead_letter_forged: 'kafka',
  head_mismatch: 'kafka',
}

/** What one run looked at, per chain where it matters. */
export const RunCoverage = z
  .object({
    /** First seq re-hashed: 1 (or the chain's first row) on a full run, the anchor's seq on an incremental one. */
    rows_from: z.number().int().min(0),
    /** Which checkpoint copies were read. */
    checkpoints: z.enum(['none', 'file', 'both']),
    views: z.boolean(),
    /** Written by runs made before the rollup tables were dropped; read, never written. */
    rollups: z.boolean().optional(),
    /** Producer sequences from their start (full runs), not only from the recorded progress. */
    producers: z.boolean(),
    /** Kafka offsets, committed offsets and partition ends. */
    kafka: z.boolean(),
  })
  .strict()
export type RunCoverage = z.infer<typeof RunCoverage>

/** A failure still open: found by some run, not yet cleared by a run that covered it. */
export const OpenFailure = z
  .object({
    check: VerifyCheck,
    /** Lowest seq of the failure's findings: rows from here on may be damaged (0: the whole chain). */
    from_seq: z.number().int().min(0),
    kinds: z.array(z.string()).max(64),
    /** For checkpoint failures: the copies the finding run read; a run must read at least these to clear it. */
    sources: z.enum(['file', 'both']).optional(),
    found_at: z.string(),
  })
  .strict()
export type OpenFailure = z.infer<typeof OpenFailure>

const ChainState = z
  .object({
    /** Incremental runs start here: the checkpoint is re-checked against its row, rows after it are verified. */
    anchor: z.object({ index: z.number().int().min(1), seq: z.number().int().min(1), hash: hex32 }).strict().nullable(),
    /** Rows 1..verified_through passed every check and are covered by a signed checkpoint (0: none). */
    verified_through: z.number().int().min(0),
    /** When the run that established verified_through started (how old the proof is); null: never. */
    verified_at: z.string().nullable(),
    /** Highest checkpoint index and seq ever seen for the chain; never lowered, so a wound-back copy is a regression. */
    checkpoint_high: z.object({ index: z.number().int().min(0), seq: z.number().int().min(0) }).strict().nullable(),
    /** The last run that saw this chain; null for pseudo-chains such as "(checkpoint file)". */
    last_run: z
      .object({
        ok: z.boolean(),
        first_seq: z.number().int().min(0),
        last_seq: z.number().int().min(0),
        at: z.string(),
        mode: z.string(),
        incremental: z.boolean(),
        covered: RunCoverage,
      })
      .strict()
      .nullable(),
    failures: z.array(OpenFailure).max(64),
  })
  .strict()
export type ChainState = z.infer<typeof ChainState>

const ProducerHole = z.object({ producer_id: z.string().min(1).max(256), from_seq: z.number().int().min(1), to_seq: z.number().int().min(1) }).strict()
const OffsetRange = z.object({ from: z.string().regex(/^\d{1,20}$/), to: z.string().regex(/^\d{1,20}$/) }).strict()

/**
 * An operator's acknowledgement of one hole after investigating it (see
 * Acknowledgement in report.ts): a producer hole by producer and exact seq
 * range, or an offset_gap by chain, seq and exact offsets.
 */
export const Acknowledgement = z
  .object({
    kind: z.enum(['producer_gap', 'dead_lettered', 'offset_gap']),
    chain_id: z.string().min(1).max(512),
    seq: z.number().int().min(0),
    producer: ProducerHole.optional(),
    offsets: OffsetRange.optional(),
    by: z.string().min(1).max(200),
    at: z.string(),
    reason: z.string().min(1).max(2000),
  })
  .strict()
  .refine((a) => (a.kind === 'offset_gap' ? a.offsets !== undefined : a.producer !== undefined), 'a producer acknowledgement names its hole, an offset_gap one its offsets')
export type Acknowledgement = z.infer<typeof Acknowledgement>

/** Most acknowledgements the state keeps. */
export const MAX_ACKNOWLEDGEMENTS = 10_000

/**
 * What verification remembers between runs, outside ClickHouse: per chain
 * the anchor where an incremental run starts, how far rows are verified and
 * since when, the failures no covering run has cleared yet, and the highest
 * checkpoint seen; per producer how far its sequence is complete.
 */
export const VerifyState = z
  .object({
    format: z.literal('readtrail-verify-state-v2'),
    database: z.string().min(1),
    updated_at: z.string(),
    /** When the last full (not incremental) run started: `--every` schedules the next one from here. */
    last_full_at: z.string().nullable(),
    chains: z.record(z.string(), ChainState),
    producers: z.record(z.string(), z.number().int().min(0)),
    /** Holes an operator acknowledged; signed with the rest, so only the verifier key's holder can add one. */
    acknowledgements: z.array(Acknowledgement).max(MAX_ACKNOWLEDGEMENTS).optional(),
  })
  .strict()
export type VerifyState = z.infer<typeof VerifyState>

/** The file form: the state, the verifier key's id and its Ed25519 signature over verifyStateSigningBytes. */
export const SignedVerifyState = VerifyState.extend({ key_id: hex32, sig: z.string().regex(/^[A-Za-z0-9+/]{85}[AQgw]==$/) }).strict()
export type SignedVerifyState = z.infer<typeof SignedVerifyState>

const DOMAIN = 'readtrail-verify-state-v2\n'

/**
 * The exact bytes signed: a domain tag (a checkpoint signature can never pass
 * for a state one, nor the reverse) and the state as canonical JSON, keys
 * sorted at every level, so re-indenting the file changes nothing signed.
 */
export function verifyStateSigningBytes(state: VerifyState, keyId: string): Buffer {
  return Buffer.from(DOMAIN + canonicalJson({ ...stripSignature(state), key_id: keyId }), 'utf8')
}

function stripSignature(state: VerifyState): VerifyState {
  const copy: Record<string, unknown> = { ...state }
  delete copy['sig']
  delete copy['key_id']
  return copy as VerifyState
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** The verifier's key as the state needs it (checkpoints/keys.ts loads both halves). */
export interface VerifierPublicKey {
  publicKey: KeyObject
  keyId: string
}
export interface VerifierSigningKey extends VerifierPublicKey {
  privateKey: KeyObject
}

/**
 * The key verify signs its state with. Made on first use, like an SSH host
 * key, when neither half exists (logged as a warning); a public key without
 * its private half is refused (the key that signed the state was removed:
 * replacing it silently would let a forged state pass for a new start), as
 * is a pair whose halves do not belong together.
 */
export function loadOrCreateVerifierKey(paths: { keyPath: string; publicKeyPath: string }, logger?: Logger): VerifierSigningKey {
  const { keyPath, publicKeyPath } = paths
  if (!existsSync(keyPath)) {
    if (existsSync(publicKeyPath)) {
      throw new VerificationError(
        'VERIFY_STATE_UNTRUSTED',
        `the verifier public key ${publicKeyPath} exists but its private key ${keyPath} does not; restore it, or remove both and run a full verify to start a new trust anchor`,
        { details: { path: keyPath } },
      )
    }
    const made = generateKeyFiles(keyPath)
    logger?.warn({ private_key: made.privatePath, public_key: made.publicPath, key_id: made.keyId }, "no verifier key yet: made one to sign the verify state (keep a copy of the .pub where the data directory's owner cannot write)")
  }
  const key = loadSigningKey(keyPath)
  if (existsSync(publicKeyPath) && loadPublicKey(publicKeyPath).keyId !== key.keyId) {
    throw new VerificationError('VERIFY_STATE_UNTRUSTED', `the verifier key ${keyPath} does not belong to the public key ${publicKeyPath}: states it signs would not verify`, {
      details: { path: publicKeyPath },
    })
  }
  return key
}

export function signVerifyState(state: VerifyState, key: VerifierSigningKey): SignedVerifyState {
  const body = stripSignature(state)
  const sig = sign(null, verifyStateSigningBytes(body, key.keyId), key.privateKey).toString('base64')
  return { ...body, key_id: key.keyId, sig }
}

function untrusted(path: string, why: string, cause?: unknown): VerificationError {
  return new VerificationError('VERIFY_STATE_UNTRUSTED', `the verify state ${path} ${why}; run a full \`readtrail verify\` to rebuild and sign it`, { cause, details: { path } })
}

/**
 * The state for `database`, or null when none was recorded yet. The file is
 * attacker-controlled like everything under READTRAIL_HOME: it is believed
 * only when the verifier key signed it. Unsigned (v1), edited, re-signed with
 * another key, or present while no public key is there to check it:
 * VERIFY_STATE_UNTRUSTED. Another database's (signed) state:
 * VERIFY_STATE_INVALID with `details.database`.
 */
export function readVerifyState(path: string, database: string, key: VerifierPublicKey | null): VerifyState | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new VerificationError('VERIFY_STATE_INVALID', `cannot read the verify state ${path}: ${(cause as Error).message}`, { cause, details: { path } })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw new VerificationError('VERIFY_STATE_INVALID', `${path} is not a readtrail verify state file`, { cause, details: { path } })
  }
  const format = (json as { format?: unknown } | null)?.format
  if (format === 'readtrail-verify-state-v1') throw untrusted(path, 'is an unsigned v1 state')
  if (format !== 'readtrail-verify-state-v2') throw new VerificationError('VERIFY_STATE_INVALID', `${path} is not a readtrail verify state file`, { details: { path } })
  const parsed = SignedVerifyState.safeParse(json)
  if (!parsed.success) throw untrusted(path, 'is not a well-formed signed state (unsigned or edited)', parsed.error)
  const state = parsed.data
  if (!key) throw untrusted(path, 'exists but no verifier public key is there to check its signature')
  if (state.key_id !== key.keyId) throw untrusted(path, `is signed by key ${state.key_id.slice(0, 16)}…, not the verifier key ${key.keyId.slice(0, 16)}…`)
  let valid = false
  try {
    valid = verify(null, verifyStateSigningBytes(state, state.key_id), key.publicKey, Buffer.from(state.sig, 'base64'))
  } catch {
    valid = false
  }
  if (!valid) throw untrusted(path, 'does not match its signature: it was edited')
  if (state.database !== database) {
    throw new VerificationError('VERIFY_STATE_INVALID', `${path} records database ${state.database}, not ${database}`, { details: { path, database: state.database } })
  }
  return stripSignature(state)
}

/** The coverage of a run as its report shows it; `kafka` is what the caller asked the verifier to check. */
export function coverageOf(report: VerificationReport, chain: { first_seq: number } | undefined, extra: { kafka?: boolean } = {}): RunCoverage {
  const cp = report.checkpoints
  return {
    rows_from: chain ? (report.incremental ? chain.first_seq : 0) : Number.MAX_SAFE_INTEGER,
    checkpoints: cp.file === null ? 'none' : cp.topic === null ? 'file' : 'both',
    views: report.views_checked,
    producers: !report.incremental,
    // A report made before kafka_checked existed (a stored fixture) falls back to the caller's word.
    kafka: report.kafka_checked ?? extra.kafka ?? false,
  }
}

/** Whether `run` looked at everything `failure` is about, so that not finding it again clears it. */
function covers(run: RunCoverage, failure: OpenFailure): boolean {
  const span = run.rows_from <= failure.from_seq
  switch (failure.check) {
    case 'rows':
      return span
    case 'checkpoints':
      return span && run.checkpoints !== 'none' && (run.checkpoints === 'both' || failure.sources !== 'both')
    case 'views':
    case 'rollups':
      return run.views
    case 'producers':
    case 'dead_lettered':
      return run.producers
    case 'kafka':
      return span && run.kafka
  }
}

/** Pseudo-chains name a source, not a chain ("(checkpoint file)"): their failures concern every chain. */
export function isPseudoChain(chainId: string): boolean {
  return chainId.startsWith('(')
}

/**
 * The state after `report`. Per chain: failures the run covered are dropped
 * and replaced by what it found; failures it did not cover stay open. A chain
 * with no open failure moves its anchor to the newest checkpoint its rows
 * matched, and is verified through min(last seq, that checkpoint's seq):
 * rows after the newest signature are never verified. A chain with an open
 * failure keeps its old anchor (the next incremental run looks again) and
 * is verified through nothing after a full run, its old range after an
 * incremental one. checkpoint_high only ever rises.
 */
export function nextVerifyState(
  previous: VerifyState | null,
  report: VerificationReport,
  producerThrough: Record<string, number>,
  options: { kafka?: boolean; acknowledgements?: readonly Acknowledgement[] } = {},
): VerifyState {
  const at = report.started_at
  const summaries = new Map(report.chains.map((c) => [c.chain_id, c]))
  const found = new Map<string, OpenFailure[]>()
  const runSources = report.checkpoints.file === null ? 'none' : report.checkpoints.topic === null ? 'file' : 'both'
  for (const f of report.findings) {
    const check = CHECK_OF[f.kind]
    const list = found.get(f.chain_id) ?? []
    const same = list.find((x) => x.check === check)
    if (same) {
      same.from_seq = Math.min(same.from_seq, f.seq)
      if (!same.kinds.includes(f.kind) && same.kinds.length < 64) same.kinds.push(f.kind)
    } else {
      list.push({ check, from_seq: f.seq, kinds: [f.kind], found_at: at, ...(check === 'checkpoints' && runSources !== 'none' ? { sources: runSources } : {}) })
    }
    found.set(f.chain_id, list)
  }
  // Findings beyond the listed ones exist somewhere: no chain the run saw can be called clean.
  if (report.findings_truncated) {
    for (const c of report.chains) if (!found.has(c.chain_id)) found.set(c.chain_id, [{ check: 'rows', from_seq: c.first_seq, kinds: ['findings_truncated'], found_at: at }])
  }
  const high: Record<string, { index: number; seq: number }> = report.checkpoint_high ?? {}
  const ids = new Set([...Object.keys(previous?.chains ?? {}), ...summaries.keys(), ...found.keys(), ...Object.keys(high)])
  const chains: VerifyState['chains'] = {}
  const next = new Map<string, { before: ChainState | undefined; failures: OpenFailure[]; covered: RunCoverage }>()
  for (const id of [...ids].sort()) {
    const before = previous?.chains[id]
    // A source-wide failure ("(checkpoint file)") is re-examined by every full run.
    const covered = coverageOf(report, isPseudoChain(id) && !report.incremental ? { first_seq: 0 } : summaries.get(id), options)
    const kept = (before?.failures ?? []).filter((f) => !covers(covered, f))
    next.set(id, { before, failures: mergeFailures(kept, found.get(id) ?? []), covered })
  }
  const globalFailure = [...next].some(([id, n]) => isPseudoChain(id) && n.failures.some(affectsAnswers))
  for (const [id, { before, failures, covered }] of next) {
    const c = summaries.get(id)
    const clean = !failures.some(affectsAnswers) && !globalFailure
    let verifiedThrough = before?.verified_through ?? 0
    let verifiedAt = before?.verified_at ?? null
    let anchor = before?.anchor ?? null
    if (c && clean && covered.checkpoints !== 'none') {
      verifiedThrough = Math.min(c.last_seq, c.checkpoint?.seq ?? 0)
      verifiedAt = at
      if (c.checkpoint) anchor = { index: c.checkpoint.index, seq: c.checkpoint.seq, hash: c.checkpoint.hash }
    } else if (!clean && !report.incremental) {
      verifiedThrough = 0
      verifiedAt = null
    }
    chains[id] = {
      anchor,
      verified_through: verifiedThrough,
      verified_at: verifiedAt,
      checkpoint_high: highest(before?.checkpoint_high ?? null, high[id], c?.checkpoint),
      last_run: c ? { ok: clean, first_seq: c.first_seq, last_seq: c.last_seq, at, mode: report.mode, incremental: report.incremental, covered } : before?.last_run ?? null,
      failures,
    }
  }
  return {
    format: 'readtrail-verify-state-v2',
    database: report.database,
    updated_at: new Date().toISOString(),
    last_full_at: report.incremental ? (previous?.last_full_at ?? null) : at,
    chains,
    producers: { ...(previous?.producers ?? {}), ...producerThrough },
    ...acknowledgementsField(options.acknowledgements ?? previous?.acknowledgements ?? []),
  }
}

function acknowledgementsField(list: readonly Acknowledgement[]): Pick<VerifyState, 'acknowledgements'> {
  // Absent when empty: a state without acknowledgements signs as it did before they existed.
  return list.length === 0 ? {} : { acknowledgements: list.slice(-MAX_ACKNOWLEDGEMENTS) }
}

/** What an operator asks to acknowledge: `producer:<producer id>:<seq>` or `<chain id>:<seq>`. */
export type AcknowledgeTarget = { producer_id: string; seq: number } | { chain_id: string; seq: number }

/** Parses `--acknowledge`; USAGE for anything else. */
export function parseAcknowledgeTarget(text: string): AcknowledgeTarget {
  const cut = text.lastIndexOf(':')
  const head = cut > 0 ? text.slice(0, cut) : ''
  const seqText = text.slice(cut + 1)
  const seq = Number(seqText)
  if (cut <= 0 || !/^\d{1,15}$/.test(seqText) || !Number.isSafeInteger(seq) || head === 'producer') {
    throw new ReadtrailError('USAGE', `--acknowledge ${JSON.stringify(text)}: expected producer:<producer id>:<seq> or <chain id>:<seq>`)
  }
  if (head.startsWith('producer:')) return { producer_id: head.slice('producer:'.length), seq }
  return { chain_id: head, seq }
}

/** Whether `ack` covers exactly this finding: the same hole, never a later or wider one. */
export function acknowledgementCovers(ack: Acknowledgement, f: Finding): boolean {
  if (ack.kind === 'offset_gap') {
    return f.kind === 'offset_gap' && f.chain_id === ack.chain_id && f.seq === ack.seq && f.offsets?.from === ack.offsets?.from && f.offsets?.to === ack.offsets?.to
  }
  // A hole first seen as producer_gap may be dead_lettered once its letters are read (or the reverse): still the same hole.
  const p = f.producer
  return (
    (f.kind === 'producer_gap' || f.kind === 'dead_lettered') &&
    p !== undefined &&
    ack.producer !== undefined &&
    p.producer_id === ack.producer.producer_id &&
    p.from_seq === ack.producer.from_seq &&
    p.to_seq === ack.producer.to_seq
  )
}

/** The finding a target names: the producer hole holding its seq, or the offset_gap at the chain's seq; undefined when none. */
export function findingFor(target: AcknowledgeTarget, findings: readonly Finding[]): Finding | undefined {
  if ('producer_id' in target) {
    return findings.find(
      (f) =>
        (f.kind === 'producer_gap' || f.kind === 'dead_lettered') && f.producer?.producer_id === target.producer_id && f.producer.from_seq <= target.seq && target.seq <= f.producer.to_seq,
    )
  }
  return findings.find((f) => f.kind === 'offset_gap' && f.chain_id === target.chain_id && f.seq === target.seq)
}

/** The acknowledgement of `f` (a finding findingFor returned). */
export function acknowledge(f: Finding, who: { by: string; reason: string }, at: string): Acknowledgement {
  return Acknowledgement.parse({
    kind: f.kind,
    chain_id: f.chain_id,
    seq: f.seq,
    ...(f.producer ? { producer: f.producer } : {}),
    ...(f.offsets ? { offsets: f.offsets } : {}),
    by: who.by,
    at,
    reason: who.reason,
  })
}

/** Splits findings into those no acknowledgement covers and those one does. */
export function applyAcknowledgements(findings: readonly Finding[], acks: readonly Acknowledgement[]): { open: Finding[]; acknowledged: AcknowledgedFinding[] } {
  const open: Finding[] = []
  const acknowledged: AcknowledgedFinding[] = []
  for (const f of findings) {
    const ack = acks.find((a) => acknowledgementCovers(a, f))
    if (ack) acknowledged.push({ ...f, acknowledged: { by: ack.by, at: ack.at, reason: ack.reason } })
    else open.push(f)
  }
  return { open, acknowledged }
}

/** One entry per check: the lowest seq, every kind, the earliest time found. */
function mergeFailures(kept: readonly OpenFailure[], found: readonly OpenFailure[]): OpenFailure[] {
  const out: OpenFailure[] = []
  for (const f of [...kept, ...found]) {
    const same = out.find((x) => x.check === f.check)
    if (!same) {
      out.push({ ...f, kinds: [...f.kinds] })
      continue
    }
    same.from_seq = Math.min(same.from_seq, f.from_seq)
    for (const k of f.kinds) if (!same.kinds.includes(k) && same.kinds.length < 64) same.kinds.push(k)
    if (f.found_at < same.found_at) same.found_at = f.found_at
    if (f.sources === 'both' || same.sources === 'both') same.sources = 'both'
  }
  return out
}

function highest(...marks: ({ index: number; seq: number } | null | undefined)[]): { index: number; seq: number } | null {
  let out: { index: number; seq: number } | null = null
  for (const m of marks) {
    if (!m) continue
    out = out ? { index: Math.max(out.index, m.index), seq: Math.max(out.seq, m.seq) } : { index: m.index, seq: m.seq }
  }
  return out
}

/** Signs the state and replaces the file atomically (common/atomic-file.ts): a crash leaves the old state or the new, never half. */
export function writeVerifyState(path: string, state: VerifyState, key: VerifierSigningKey): void {
  const signed = signVerifyState(state, key)
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  replaceFileSync(path, `${JSON.stringify(signed, null, 2)}\n`)
}
