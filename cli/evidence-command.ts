import { existsSync } from 'node:fs'
import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { loadPublicKey } from '../checkpoints/keys.js'
import { ReadtrailError } from '../common/errors.js'
import { parseEvidenceText, serializeEvidenceBundle, type EvidenceBundle } from '../evidence/bundle.js'
import { exportEvidence, type ExportEvidenceOptions } from '../evidence/export-bundle.js'
import { readBundleFile } from '../evidence/read-bundle-file.js'
import { microsToIso, verifyEvidence, type EvidenceVerdict } from '../evidence/verify-bundle.js'
import type { Store } from '../store/store.js'
import { openOutputFile } from './safe-output.js'

export interface EvidenceExportArgs {
  eventId: string | undefined
  /** Where to write the bundle (mode 0600); never overwritten unless `force`. @default `evidence-<eventId>.json` */
  out?: string | undefined
  /** Replace an existing file at `out` (atomically; a symlink there is replaced, never followed). @default false */
  force?: boolean
  /**
   * Signed checkpoints to choose from (the checkpoint log's contents), or
   * how to load them: called once the output file is open, so a bad --out
   * fails before the checkpoint copies are read.
   */
  checkpoints: readonly SignedCheckpoint[] | (() => Promise<readonly SignedCheckpoint[]>)
  /** SPKI PEM of the checkpoint key. */
  publicKeyPem: string
  /** Clock for the bundle's exported_at. @default () => new Date() */
  now?: () => Date
}

export interface EvidenceVerifyArgs {
  file: string | undefined
  /** The operator's public key file, given explicitly (--public-key, READTRAIL_CHECKPOINT_PUBLIC_KEY): it must load. */
  publicKeyPath?: string | undefined
  /**
   * The configured default public key file (`<signing key>.pub`): used when
   * it exists, so an operator's own machine proves without a flag.
   */
  defaultPublicKeyPath?: string | undefined
  json: boolean
}

/** Exit codes of `evidence verify`. 2 (an error) is set by main. */
export const EVIDENCE_EXIT = Object.freeze({ proved: 0, notProved: 1, untrustedKey: 3 })

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * `readtrail evidence export --event ID [--out FILE]`: writes one bundle file
 * and prints what it proves. Exit 0; every failure is a coded error (exit 2,
 * set by main).
 */
export async function evidenceExportCommand(
  source: Store | ((options: ExportEvidenceOptions) => Promise<EvidenceBundle>),
  args: EvidenceExportArgs,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const eventId = args.eventId?.trim()
  if (!eventId) throw new ReadtrailError('USAGE', 'missing event id; usage: readtrail evidence export --event ID [--out FILE]')
  // The id becomes part of the default file name: only a UUID may.
  if (!UUID.test(eventId)) throw new ReadtrailError('USAGE', `event id ${JSON.stringify(eventId)} is not a UUID`, { details: { event_id: eventId } })
  // Opened before the (possibly long) export: an existing file, a planted
  // symlink or a read-only directory fails first. 0600: the bundle names the
  // event's principal and records, and carries the later rows in full.
  const out = args.out ?? `evidence-${eventId.toLowerCase()}.json`
  const output = openOutputFile(out, { force: args.force ?? false })
  let text: string
  let bundle: EvidenceBundle
  try {
    const checkpoints = typeof args.checkpoints === 'function' ? await args.checkpoints() : args.checkpoints
    const options: ExportEvidenceOptions = { eventId, checkpoints, publicKeyPem: args.publicKeyPem, ...(args.now ? { now: args.now } : {}) }
    // A store held here, or a function that asks the process owning it.
    bundle = typeof source === 'function' ? await source(options) : await exportEvidence(source, options)
    text = serializeEvidenceBundle(bundle)
    output.commit(text)
  } catch (err) {
    output.abandon()
    throw err
  }
  stdout.write(`${formatExportSummary(bundle, out, Buffer.byteLength(text))}\n`)
  return 0
}

/** One paragraph: what the written file proves, how to check it, and what else it discloses. */
export function formatExportSummary(bundle: EvidenceBundle, path: string, bytes: number): string {
  const { event: e, checkpoint: cp } = bundle
  const records = `${e.record_ids.length} record id${e.record_ids.length === 1 ? '' : 's'}${e.record_ids_complete ? '' : ' (list incomplete)'}`
  const after = bundle.segment.length
  const link = after === 0 ? 'it is itself the row' : `it and the ${after} row${after === 1 ? '' : 's'} after it link by SHA-256 to the row`
  return (
    `Wrote ${path} (${bytes} bytes). Event ${e.event_id} (${e.principal_type} ${e.principal_id}, ${e.action} of ${records} in ${e.db_name}.${e.table_name} ` +
    `at ${microsToIso(e.occurred_at)}) is row seq ${e.seq} of chain ${e.chain_id} in database ${bundle.database}; ${link} ` +
    `signed by checkpoint #${cp.index} (seq ${cp.seq}) at ${cp.signed_at} with key ${bundle.key_id}. ` +
    `Anyone can check it offline with \`readtrail evidence verify ${path} --public-key <the operator's public key file>\` (without a trusted key it proves nothing). ` +
    (after === 0 ? '' : `The file also carries ${after === 1 ? 'that later row' : `those ${after} later rows`} in full, so it discloses what ${after === 1 ? 'it records' : 'they record'}; share it accordingly.`)
  ).trimEnd()
}

/**
 * `readtrail evidence verify <file> [--public-key PEM] [--json]`: exit 0 when
 * the bundle proves its event against a trusted key, 1 when it does not, 3
 * when it holds together only under the key it carries itself (untrusted
 * key: EVIDENCE_KEY_UNTRUSTED in the verdict). A file that is not a bundle
 * throws EVIDENCE_INVALID (exit 2, set by main). Works offline: the only
 * inputs are the file and a key file.
 */
export async function evidenceVerifyCommand(args: EvidenceVerifyArgs, stdout: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (!args.file) throw new ReadtrailError('USAGE', 'missing bundle file; usage: readtrail evidence verify <file> [--public-key FILE] [--json]')
  const trustedKeyPem = trustedKeyOf(args)
  const text = await readBundleFile(args.file)
  const verdict = verifyEvidence(parseEvidenceText(text), trustedKeyPem === undefined ? {} : { trustedKeyPem })
  stdout.write(`${args.json ? JSON.stringify(verdict, null, 2) : formatVerdict(verdict, args.file)}\n`)
  if (verdict.ok) return EVIDENCE_EXIT.proved
  return verdict.code === 'EVIDENCE_KEY_UNTRUSTED' ? EVIDENCE_EXIT.untrustedKey : EVIDENCE_EXIT.notProved
}

/**
 * The key the bundle is held against: never one the bundle names. An
 * explicit key that cannot be read is an operator error (exit 2), not an
 * untrusted verdict; the default key counts only where it exists.
 */
function trustedKeyOf(args: EvidenceVerifyArgs): string | undefined {
  if (args.publicKeyPath !== undefined) return loadPublicKey(args.publicKeyPath).pem
  if (args.defaultPublicKeyPath !== undefined && existsSync(args.defaultPublicKeyPath)) return loadPublicKey(args.defaultPublicKeyPath).pem
  return undefined
}

/** The verdict for a person: the answer first, then what the event is, then exactly what is and is not proved. */
export function formatVerdict(v: EvidenceVerdict, file: string): string {
  const e = v.event
  const records = `${e.record_count} record id${e.record_count === 1 ? '' : 's'}${e.record_ids_complete ? '' : ' (list incomplete)'}`
  const lines = [
    v.ok
      ? `PROVED: ${file}`
      : v.code === 'EVIDENCE_KEY_UNTRUSTED'
        ? `NOT PROVED: untrusted key: ${file}: ${v.problem}`
        : `NOT PROVED: ${file}: step ${v.failed_step} failed: ${v.problem}`,
    '',
    `event ${e.event_id}${v.ok ? '' : ' (as the bundle states it; unverified)'}`,
    `  principal  ${e.principal_id} (${e.principal_type})`,
    `  access     ${e.action} of ${records} in ${e.db_name}.${e.table_name}`,
    `  occurred   ${e.occurred_at} (as reported by the application)`,
    `  stored as  seq ${e.seq} of chain ${e.chain_id}`,
    '',
    `steps: ${v.steps.map((s) => `${s.name} ${s.result}`).join(', ')}`,
  ]
  if (v.proved.length > 0) lines.push('', 'proved:', ...v.proved.map((p) => `  - ${p}`))
  lines.push('', 'not proved:', ...v.not_proved.map((p) => `  - ${p}`))
  return lines.join('\n')
}
