import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { createKafka } from '../common/kafka.js'
import { ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { EvidenceBundle } from '../evidence/bundle.js'
import { exportEvidence, type ExportEvidenceOptions } from '../evidence/export-bundle.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import type { Store } from '../store/store.js'
import type { AppConfig } from './config.js'
import { evidenceExportCommand, evidenceVerifyCommand } from './evidence-command.js'
import { assertStoreFound, withStore } from './runtime.js'

export interface EvidenceArgs {
  sub: string | undefined
  file: string | undefined
  eventId: string | undefined
  out: string | undefined
  json: boolean
  /** export: replace an existing --out file (atomically, never through a symlink). @default false */
  force?: boolean
  /** verify: the operator's public key file (--public-key), to pin the signer. */
  publicKeyPath: string | undefined
}

/**
 * `readtrail evidence export|verify`. Export chooses among the checkpoints
 * whose signatures verified in both copies (a forged checkpoint can never
 * anchor a bundle) and reaches the store directly or through its owner.
 */
export async function evidenceCommand(config: AppConfig, args: EvidenceArgs, logger: Logger): Promise<number> {
  switch (args.sub) {
    case 'export': {
      const trustedCheckpoints = async () => {
        // After the output file is claimed (its problems come first), before Kafka is asked for checkpoints.
        assertStoreFound(config)
        const checkpoints = await loadCheckpoints({
          database: config.store.database,
          publicKeyPath: config.checkpoints.publicKeyPath,
          logPath: config.checkpoints.logPath,
          topic: { kafka: createKafka(config.kafka, logger), name: config.checkpoints.topic },
        })
        return [...checkpoints.analysis.trusted.values()].flat()
      }
      let publicKeyPem: string
      try {
        publicKeyPem = readFileSync(config.checkpoints.publicKeyPath, 'utf8')
      } catch (err) {
        // A home with no key is usually a home with no store: say that, naming the path.
        assertStoreFound(config)
        throw err
      }
      const viaStore = (options: ExportEvidenceOptions) =>
        withStore<EvidenceBundle>(config, 'readtrail evidence export', logger, (store) => exportEvidence(store, options), {
          op: 'evidence',
          eventId: options.eventId,
          checkpoints: [...options.checkpoints],
          publicKeyPem: options.publicKeyPem,
        })
      return evidenceExportCommand(viaStore, { eventId: args.eventId, out: args.out, force: args.force ?? false, checkpoints: trustedCheckpoints, publicKeyPem })
    }
    case 'verify': {
      // A key configured on purpose (READTRAIL_CHECKPOINT_PUBLIC_KEY) must load; the default `<signing key>.pub` counts where it exists.
      const defaultPath = `${config.checkpoints.keyPath}.pub`
      const configured = config.checkpoints.publicKeyPath !== defaultPath ? config.checkpoints.publicKeyPath : undefined
      return evidenceVerifyCommand({ file: args.file, publicKeyPath: args.publicKeyPath ?? configured, defaultPublicKeyPath: defaultPath, json: args.json })
    }
    default:
      throw new ReadtrailError('USAGE', `readtrail evidence ${args.sub ?? ''}: expected export or verify; see readtrail --help`)
  }
}

const EvidenceRequest = z
  .object({ op: z.literal('evidence'), eventId: z.string().min(1).max(64), checkpoints: z.array(SignedCheckpoint).max(10_000_000), publicKeyPem: z.string().min(1).max(4096) })
  .strict()

/** The owner side of an evidence export request (validated again: the socket is a boundary). */
export function answerEvidence(store: Store, ask: unknown): Promise<EvidenceBundle> {
  const { eventId, checkpoints, publicKeyPem } = EvidenceRequest.parse(ask)
  return exportEvidence(store, { eventId, checkpoints, publicKeyPem })
}
