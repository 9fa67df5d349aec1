import type { KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { loadPublicKey } from '../checkpoints/keys.js'
import { createKafka } from '../common/kafka.js'
import { userInfo } from 'node:os'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import { createLogger, type Logger } from '../common/logger.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import type { Facts } from '../integrity/facts.js'
import { formatReport, type VerificationReport } from '../integrity/report.js'
import { verifyLog, type VerifyOptions } from '../integrity/verify.js'
import { loadOrCreateVerifierKey, nextVerifyState, parseAcknowledgeTarget, readVerifyState, writeVerifyState, type VerifyState } from '../integrity/verify-state.js'
import { collectFacts } from '../integrity/verify-store.js'
import type { AppConfig } from './config.js'
import { withStore } from './runtime.js'

export interface VerifyCommandArgs {
  json: boolean
  views: boolean
  mode: 'in-db' | 'independent'
  workers: number
  /** Start each chain at the newest checkpoint an earlier run verified. */
  sinceCheckpoint: boolean
  /** Run again every this many ms until stopped or until damage is found. */
  everyMs: number | null
  /**
   * With `everyMs`: run a full check (every row, every copy) when this long
   * has passed since the last full run recorded in the signed state.
   * @default 86400000 (24h)
   */
  fullEveryMs?: number
  producerGraceMs: number
  /** Which copies of the checkpoints to read: both, the file only, or none (chain-only, said in the report). */
  checkpoints: 'both' | 'file' | 'none'
  /**
   * `--acknowledge producer:<id>:<seq>` or `<chain id>:<seq>` (repeatable):
   * record in the signed verify state that the hole verify reports there
   * was investigated. Needs `acknowledgeReason`; refused with `--every`.
   * @default []
   */
  acknowledge?: readonly string[]
  /** Who acknowledges (`--by`). @default the OS user name */
  acknowledgeBy?: string
  /** Why (`--reason`): what the investigation found. */
  acknowledgeReason?: string
}

/** Default period of the full runs `--every` interleaves with its incremental ones. */
export const DEFAULT_FULL_EVERY_MS = 86_400_000

/**
 * `readtrail verify`: exit 0 intact, 1 damaged (2 on error, set by main).
 * With `--every` it keeps running, logging one pino JSON line per run, and
 * exits 1 with an alert line on the first damage it finds. Its runs are
 * incremental, except a full run whenever `--full-every` has passed since
 * the last full run the signed state records (so a restart neither resets
 * nor skips the schedule): incremental runs never look behind their anchors,
 * and rows deleted there are found only by a full run.
 */
export async function verifyCommand(config: AppConfig, args: VerifyCommandArgs, logger: Logger): Promise<number> {
  if ((args.acknowledge ?? []).length > 0 && args.everyMs !== null) throw new ReadtrailError('USAGE', '--acknowledge records one decision in one run; it does not go with --every')
  if (args.everyMs === null) {
    const report = await verifyOnce(config, args, logger)
    process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`)
    return report.ok ? 0 : 1
  }
  const fullEveryMs = args.fullEveryMs ?? DEFAULT_FULL_EVERY_MS
  const out = createLogger({ level: 'info' }, pino.destination(1)).child({ component: 'verify', database: config.store.database })
  let stop = false
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => ((stop = true), resolve())
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  while (!stop) {
    try {
      const full = isFullRunDue(config, fullEveryMs, Date.now(), out)
      const report = await verifyOnce(config, { ...args, sinceCheckpoint: !full }, logger)
      const summary = {
        ok: report.ok,
        mode: report.mode,
        incremental: report.incremental,
        // Whether this was one of the scheduled full runs that look behind the anchors.
        full: !report.incremental,
        full_every_ms: fullEveryMs,
        rows_verified: report.rows_verified,
        chains: report.chains.map((c) => ({ chain_id: c.chain_id, first_seq: c.first_seq, last_seq: c.last_seq, checkpoint: c.checkpoint?.index ?? null })),
        checkpoints_valid: report.checkpoints.valid,
        producers_in_flight: report.producers.in_flight.length,
        warnings: report.warnings,
        duration_ms: report.duration_ms,
      }
      if (!report.ok) {
        out.fatal({ ...summary, alert: 'READTRAIL_INTEGRITY_ALERT', findings: report.findings.slice(0, 50) }, `verification found ${report.findings.length} findings`)
        return 1
      }
      out.info(summary, 'verification run intact')
    } catch (err) {
      // A store or broker outage is not damage: say so and try again next period.
      if (!isReadtrailError(err) || !err.retriable) throw err
      out.error({ err }, 'verification could not run; retrying next period')
    }
    await Promise.race([sleep(args.everyMs), stopped])
  }
  return 0
}

/**
 * Whether the next periodic run must be full: no trusted state, no full run
 * recorded, or the last one is `fullEveryMs` old. An untrusted state makes
 * the run full (which re-signs it) and says so, rather than stopping the job.
 */
export function isFullRunDue(config: AppConfig, fullEveryMs: number, nowMs: number, logger: Logger): boolean {
  let state: VerifyState | null
  try {
    state = readVerifyState(config.verifyStatePath, config.store.database, existingPublicKey(config))
  } catch (err) {
    logger.warn({ err }, 'verify state not trusted: this run is a full one and replaces it')
    return true
  }
  const last = state?.last_full_at ? Date.parse(state.last_full_at) : NaN
  return !Number.isFinite(last) || nowMs - last >= fullEveryMs
}

/** The verifier public key if there is one yet. */
function existingPublicKey(config: AppConfig): { publicKey: KeyObject; keyId: string } | null {
  if (!existsSync(config.verifier.publicKeyPath)) return null
  return loadPublicKey(config.verifier.publicKeyPath)
}

/**
 * The acknowledgements a run is asked to record, checked before anything
 * runs: each target well formed, a reason given, who acknowledges named.
 */
export function acknowledgeRequests(args: Pick<VerifyCommandArgs, 'acknowledge' | 'acknowledgeBy' | 'acknowledgeReason'>): NonNullable<VerifyOptions['acknowledge']> {
  const targets = (args.acknowledge ?? []).map(parseAcknowledgeTarget)
  if (targets.length === 0) return []
  const reason = args.acknowledgeReason?.trim() ?? ''
  if (reason.length === 0 || reason.length > 2000) throw new ReadtrailError('USAGE', '--acknowledge needs --reason "<what the investigation found>" (up to 2000 characters)')
  const by = (args.acknowledgeBy ?? userInfo().username).trim()
  if (by.length === 0 || by.length > 200) throw new ReadtrailError('USAGE', '--by: name who acknowledges (up to 200 characters)')
  return targets.map((target) => ({ target, by, reason }))
}

/**
 * One verification: reads the checkpoints, runs the steps where the store
 * is, records and signs the outcome. With `--acknowledge`, the holes named
 * are recorded as acknowledged in the signed state (the run refuses with
 * USAGE, writing nothing, if it does not report such a hole): later runs
 * list them as acknowledged, not as findings, for as long as the hole stays
 * exactly as it was.
 */
export async function verifyOnce(config: AppConfig, args: VerifyCommandArgs, logger: Logger): Promise<VerificationReport> {
  const acknowledge = acknowledgeRequests(args)
  const key = loadOrCreateVerifierKey(config.verifier, logger)
  const kafka = args.checkpoints === 'both' ? createKafka(config.kafka, logger) : null
  const checkpoints =
    args.checkpoints === 'none'
      ? null
      : await loadCheckpoints({
          database: config.store.database,
          publicKeyPath: config.checkpoints.publicKeyPath,
          logPath: config.checkpoints.logPath,
          topic: kafka ? { kafka, name: config.checkpoints.topic } : null,
        })
  let previous: VerifyState | null = null
  let replaced: string | null = null
  try {
    previous = readVerifyState(config.verifyStatePath, config.store.database, key)
  } catch (err) {
    // An incremental run cannot start from a state it cannot trust; a full run rebuilds and re-signs it.
    if (args.sinceCheckpoint) throw err
    replaced = isReadtrailError(err) ? `${err.code}: ${err.message}` : String(err)
    logger.warn({ err }, 'verify state unreadable or untrusted; this full run replaces it')
  }
  const since = args.sinceCheckpoint ? previous : null
  const collect = (request: Parameters<typeof collectFacts>[1]) =>
    withStore<Facts>(config, 'readtrail verify', logger, (store) => collectFacts(store, request), { op: 'facts', request })
  const checkpointHigh = Object.fromEntries(
    Object.entries(previous?.chains ?? {}).flatMap(([id, c]) => (c.checkpoint_high ? [[id, c.checkpoint_high] as const] : [])),
  )
  const options: VerifyOptions = {
    mode: args.mode,
    views: args.views,
    workers: args.workers,
    producerGraceMs: args.producerGraceMs,
    checkpoints,
    since,
    // The highest checkpoints ever seen, from the signed state: both copies wound back below them is a finding.
    checkpointHigh,
    // Only a trusted (signed) state's acknowledgements count; a replaced state's are lost, and its holes are findings again.
    acknowledgements: previous?.acknowledgements ?? [],
    acknowledge,
    ...(kafka ? { kafkaLog: { kafka, topic: config.topic, groupId: config.groupId } } : {}),
  }
  const outcome = await verifyLog(collect, config.store.database, options)
  if (args.sinceCheckpoint && !since) outcome.report.warnings.push(`no verify state at ${config.verifyStatePath} yet: this run checked every row`)
  if (replaced) outcome.report.warnings.push(`the verify state at ${config.verifyStatePath} was not trusted (${replaced}); this run replaced it with a freshly signed one, and earlier failures it recorded are lost`)
  writeVerifyState(
    config.verifyStatePath,
    nextVerifyState(previous, outcome.report, outcome.producerThrough, { kafka: kafka !== null, acknowledgements: outcome.acknowledgements }),
    key,
  )
  for (const a of outcome.acknowledgements.slice(previous?.acknowledgements?.length ?? 0)) {
    logger.warn({ acknowledged: a }, 'hole acknowledged in the signed verify state')
  }
  return outcome.report
}
