import { existsSync } from 'node:fs'
import type { Kafka } from 'kafkajs'
import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { loadPublicKey } from '../checkpoints/keys.js'
import { isReadtrailError } from '../common/errors.js'
import { createKafka } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { createEventDecoder, MESSAGE_BOUNDS, readDeadLetteredSources } from '../consumers/repair-messages.js'
import { loadTrustedProducers } from '../consumers/trusted-producers.js'
import { REBUILD_LIMITS } from '../consumers/repair-rebuild.js'
import { deadLetterTopicOf } from '../consumers/topics.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import { republishCheckpoints } from '../integrity/repair-checkpoints.js'
import { RepairError } from '../integrity/repair-errors.js'
import { formatRepairReport, repairExitCode, type RepairReport } from '../integrity/repair-report.js'
import { partitionOf, restoreSignedRows, type RepairTarget } from '../integrity/repair-signed.js'
import { quarantineUnsignedRows } from '../integrity/repair-unsigned.js'
import { readVerifyState, type VerifyState } from '../integrity/verify-state.js'
import type { Store } from '../store/store.js'
import type { AppConfig } from './config.js'
import { openAppStore } from './runtime.js'

export interface RepairCommandArgs {
  /** Report what would be repaired, change nothing. */
  dryRun: boolean
  /** Only this chain (`<topic>/<partition>`); all chains of the topic when absent. */
  chain: string | undefined
  /** Also move unsigned rows Kafka does not vouch for into quarantined_rows (after CHAIN_UNTRUSTED). */
  quarantineUnsigned: boolean
  /** Also refill the checkpoint topic from the file (after CHECKPOINT_COPY_LOST). */
  republishCheckpoints: boolean
  /** Bound of the ingested_at search per gap. @default 2000000 */
  maxCandidates: number
  json: boolean
}

/**
 * `readtrail repair`: the operator's explicit way back after the writer
 * stopped (CHAIN_UNTRUSTED, CHECKPOINT_COPY_LOST) or verify found signed
 * rows deleted. By default it restores signed rows missing from the store,
 * only where Kafka's messages rebuild rows that hash to what the signed
 * checkpoint commits to; `--quarantine-unsigned` and
 * `--republish-checkpoints` add the two actions that remove or republish
 * something. It needs the store and the partitions to itself. Exit 0
 * nothing (left) to repair, 1 something could not be proved (nothing
 * unproved was changed), 3 a dry run found repairs to make, 2 error.
 */
export async function repairCommand(config: AppConfig, args: RepairCommandArgs, logger: Logger): Promise<number> {
  const kafka = createKafka(config.kafka, logger)
  await assertWriterStopped(kafka, config.groupId)
  const store = await openRepairStore(config, logger)
  const report: RepairReport = { dry_run: args.dryRun, items: [], warnings: [] }
  try {
    const key = loadPublicKey(config.checkpoints.publicKeyPath)
    if (args.republishCheckpoints) {
      const verifyState = readSignedVerifyState(config, report.warnings)
      report.items.push(
        ...(await republishCheckpoints({ kafka, topic: config.checkpoints.topic, logPath: config.checkpoints.logPath, database: store.database, key, verifyState, dryRun: args.dryRun, logger })),
      )
    }
    const checkpoints = await loadCheckpoints({
      database: store.database,
      publicKeyPath: config.checkpoints.publicKeyPath,
      logPath: config.checkpoints.logPath,
      topic: { kafka, name: config.checkpoints.topic },
    })
    report.warnings.push(...checkpoints.analysis.warnings)
    // The newest checkpoint per chain whose signature verifies, from either copy: the writer's own rule for where a chain resumes.
    const anchors = new Map<string, SignedCheckpoint>()
    for (const [chainId, list] of checkpoints.analysis.trusted) if (list.length > 0) anchors.set(chainId, list.at(-1)!)
    const chains = await chainsToRepair(store, config.topic, anchors, args.chain)
    const deadLetters = await readDeadLetteredSources(kafka, deadLetterTopicOf({ topic: config.topic }), config.topic, { ...MESSAGE_BOUNDS, maxMessages: 1_000_000 })
    if (!deadLetters.complete) report.warnings.push('the dead-letter topic holds more than 1,000,000 messages: some dead-lettered offsets may be taken for missing events')
    const target: RepairTarget = {
      store,
      kafka,
      topic: config.topic,
      // The writer's trust: a gap is filled only from messages the writer would have stored.
      decoder: createEventDecoder({
        trusted: existsSync(config.producers.trustedPath) || !config.producers.allowUnsigned ? loadTrustedProducers(config.producers.trustedPath) : null,
        allowUnsigned: config.producers.allowUnsigned,
      }),
      deadLettered: deadLetters.sources,
      logger,
      dryRun: args.dryRun,
      limits: { ...REBUILD_LIMITS, maxCandidates: args.maxCandidates },
      bounds: MESSAGE_BOUNDS,
    }
    for (const chainId of chains) {
      const cp = anchors.get(chainId) ?? null
      if (cp) report.items.push(...(await restoreSignedRows(target, chainId, cp)))
      if (args.quarantineUnsigned) report.items.push(...(await quarantineUnsignedRows(target, chainId, cp)))
    }
  } finally {
    await store.close()
  }
  process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatRepairReport(report)}\n`)
  return repairExitCode(report)
}

/** The chains of this topic that have a signed checkpoint or stored rows (or the one asked for). */
async function chainsToRepair(store: Store, topic: string, anchors: ReadonlyMap<string, SignedCheckpoint>, only: string | undefined): Promise<string[]> {
  if (only !== undefined) {
    if (partitionOf(only, topic) === null) throw new RepairError('USAGE', `--chain ${JSON.stringify(only)} is not a chain of topic ${topic} (expected ${topic}/<partition>)`)
    return [only]
  }
  const stored = await store.queryRows<{ c: string }>(`SELECT DISTINCT toString(chain_id) AS c FROM ${store.table('access_log')}`)
  const ids = new Set([...anchors.keys(), ...stored.map((r) => r.c)].filter((id) => partitionOf(id, topic) !== null))
  return [...ids].sort((a, b) => partitionOf(a, topic)! - partitionOf(b, topic)!)
}

/**
 * A running writer would resume from, sign over, or re-store what repair is
 * changing: refuse while its consumer group has members (the embedded
 * store's owner lock covers `consume` on this machine; this covers a
 * writer anywhere, against a ClickHouse server too).
 */
async function assertWriterStopped(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin()
  try {
    await admin.connect()
    const [group] = (await admin.describeGroups([groupId])).groups
    if (group && group.members.length > 0) {
      throw new RepairError('REPAIR_WRITER_RUNNING', `the chain writer group ${groupId} has ${group.members.length} active member(s) (state ${group.state}): stop every \`readtrail consume\` before repairing`, {
        details: { group_id: groupId, members: group.members.length, state: group.state },
      })
    }
  } catch (err) {
    if (isReadtrailError(err)) throw err
    throw new RepairError('KAFKA_UNAVAILABLE', `cannot describe the chain writer group ${groupId}: ${(err as Error).message}`, { cause: err })
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** Takes the embedded store's owner lock; while `consume` holds it, says so in repair's terms. */
async function openRepairStore(config: AppConfig, logger: Logger): Promise<Store> {
  try {
    return await openAppStore(config, 'readtrail repair', logger, { create: false })
  } catch (err) {
    if (!isReadtrailError(err) || err.code !== 'STORE_LOCKED') throw err
    const owner = err.details ?? {}
    throw new RepairError(
      'REPAIR_WRITER_RUNNING',
      `readtrail repair needs the store to itself, but ${typeof owner['pid'] === 'number' ? `readtrail process ${owner['pid']} (\`${String(owner['command'])}\`)` : 'another readtrail process'} owns ${config.store.dataDir}: stop it, then run repair again`,
      { cause: err, details: owner },
    )
  }
}

/** The signed verify state, or null (with a warning) when none was recorded; an untrusted one stops the command. */
function readSignedVerifyState(config: AppConfig, warnings: string[]): VerifyState | null {
  const publicKey = existsSync(config.verifier.publicKeyPath) ? loadPublicKey(config.verifier.publicKeyPath) : null
  const state = readVerifyState(config.verifyStatePath, config.store.database, publicKey)
  if (!state) warnings.push(`no signed verify state at ${config.verifyStatePath}: a checkpoint file rolled back before any verify ran cannot be told apart`)
  return state
}
