import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createKafka } from '../common/kafka.js'
import { isReadtrailError } from '../common/errors.js'
import { createLogger, type Logger } from '../common/logger.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import type { Facts } from '../integrity/facts.js'
import { formatReport, type VerificationReport } from '../integrity/report.js'
import { verifyLog } from '../integrity/verify.js'
import { nextVerifyState, readVerifyState, writeVerifyState, type VerifyState } from '../integrity/verify-state.js'
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
  producerGraceMs: number
  /** Which copies of the checkpoints to read: both, the file only, or none (chain-only, said in the report). */
  checkpoints: 'both' | 'file' | 'none'
}

/**
 * `readtrail verify`: exit 0 intact, 1 damaged (2 on error, set by main).
 * With `--every` it keeps running, one incremental run per period, logging
 * one pino JSON line per run, and exits 1 with an alert line on the first
 * damage it finds.
 */
export async function verifyCommand(config: AppConfig, args: VerifyCommandArgs, logger: Logger): Promise<number> {
  if (args.everyMs === null) {
    const report = await verifyOnce(config, args, logger)
    process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`)
    return report.ok ? 0 : 1
  }
  const out = createLogger({ level: 'info' }, pino.destination(1)).child({ component: 'verify', database: config.store.database })
  let stop = false
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => ((stop = true), resolve())
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  let first = true
  while (!stop) {
    try {
      const report = await verifyOnce(config, { ...args, sinceCheckpoint: args.sinceCheckpoint || !first }, logger)
      first = false
      const summary = {
        ok: report.ok,
        mode: report.mode,
        incremental: report.incremental,
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

/** One verification: reads the checkpoints, runs the steps where the store is, records the outcome. */
export async function verifyOnce(config: AppConfig, args: VerifyCommandArgs, logger: Logger): Promise<VerificationReport> {
  const checkpoints =
    args.checkpoints === 'none'
      ? null
      : await loadCheckpoints({
          database: config.store.database,
          publicKeyPath: config.checkpoints.publicKeyPath,
          logPath: config.checkpoints.logPath,
          topic: args.checkpoints === 'both' ? { kafka: createKafka(config.kafka, logger), name: config.checkpoints.topic } : null,
        })
  let previous: VerifyState | null = null
  try {
    previous = readVerifyState(config.verifyStatePath, config.store.database)
  } catch (err) {
    // An incremental run cannot start from a state it cannot read; a full run rebuilds it.
    if (args.sinceCheckpoint) throw err
    logger.warn({ err }, 'verify state unreadable; a full run replaces it')
  }
  const since = args.sinceCheckpoint ? previous : null
  const collect = (request: Parameters<typeof collectFacts>[1]) =>
    withStore<Facts>(config, 'readtrail verify', logger, (store) => collectFacts(store, request), { op: 'facts', request })
  const outcome = await verifyLog(collect, config.store.database, {
    mode: args.mode,
    views: args.views,
    workers: args.workers,
    producerGraceMs: args.producerGraceMs,
    checkpoints,
    since,
  })
  if (args.sinceCheckpoint && !since) outcome.report.warnings.push(`no verify state at ${config.verifyStatePath} yet: this run checked every row`)
  writeVerifyState(config.verifyStatePath, nextVerifyState(previous, outcome.report, outcome.producerThrough))
  return outcome.report
}
