import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { generateKeyFiles } from '../checkpoints/keys.js'
import { replaceFileSync } from '../common/atomic-file.js'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import { acquirePidLock } from '../common/pid-lock.js'
import { ensurePrivateDirectory } from '../common/private-dir.js'
import { formatTrustedProducers, loadTrustedProducers, parseTrustedProducers, ProducerService, type TrustedProducers } from '../consumers/trusted-producers.js'
import { ProducerError } from '../producers/errors.js'
import { formatRows, OUTPUT_FORMATS, type OutputFormat } from './format-rows.js'

/** Where producer keys and the trusted-producers file go when no flag says. */
export function defaultProducerKeyPath(home: string, service: string): string {
  return join(home, 'producer-keys', `${service}.pem`)
}

export function defaultTrustedProducersPath(home: string): string {
  return join(home, 'trusted-producers.json')
}

// A name that stays one path component in any shell and file system: no
// separator, no `..`, no leading dot or dash, short enough for `.pem.pub`.
const SAFE_FILE_COMPONENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export interface GenerateProducerKeyArgs {
  service: string
  /** --out; @default defaultProducerKeyPath(home, service) */
  out: string | undefined
  /** --trusted; @default defaultTrustedProducersPath(home) */
  trusted: string | undefined
  home: string
}

/**
 * `readtrail keys generate --producer SERVICE`: writes the service's key
 * pair (private 0600, `.pub` beside it, in a 0700 directory) and adds the
 * public key to the trusted-producers file in one atomic replace. The trusted
 * file is loaded and checked before any key is made, so a damaged file is
 * reported with nothing written; a failure after the key files exist removes
 * them, so the command can simply be rerun.
 */
export function generateProducerKey(args: GenerateProducerKeyArgs, stdout: NodeJS.WritableStream): number {
  const service = ProducerService.safeParse(args.service)
  if (!service.success) throw new ReadtrailError('USAGE', `--producer ${JSON.stringify(args.service)}: a service name is 1 to 256 characters without control characters`)
  if (args.out === undefined && !SAFE_FILE_COMPONENT.test(args.service)) {
    throw new ReadtrailError(
      'USAGE',
      `--producer ${JSON.stringify(args.service)} cannot name the key file ${defaultProducerKeyPath('$READTRAIL_HOME', '<service>')}: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit), or give --out`,
    )
  }
  const privatePath = args.out ?? defaultProducerKeyPath(args.home, args.service)
  const trustedPath = args.trusted ?? defaultTrustedProducersPath(args.home)
  // Checked before anything is made: a damaged trusted file is reported with nothing written (a missing one gets its private directory).
  trustedProducersOrNone(trustedPath)
  // Two operators adding producers at once would each rewrite the file from what they read; the lock keeps both keys.
  const lock = acquirePidLock({
    path: `${trustedPath}.lock`,
    command: 'readtrail keys generate --producer',
    refuse: (refusal) =>
      new ReadtrailError('TRUSTED_PRODUCERS_INVALID', `${trustedPath} is being changed by another process${refusal.reason === 'live' ? ` (pid ${refusal.holder.pid})` : ''}; try again when it is done`, {
        details: { path: trustedPath, lock: refusal.reason },
      }),
  })
  try {
    // Re-read under the lock: what counts is the file as it is now.
    const producers = trustedProducersOrNone(trustedPath)?.producers ?? []
    ensurePrivateDirectory({ dir: dirname(privatePath), holds: 'producer keys' })
    const files = makeKeyFiles(privatePath, args.service)
    try {
      const clash = producers.find((p) => p.keyId === files.keyId)
      if (clash) throw new ReadtrailError('TRUSTED_PRODUCERS_INVALID', `${trustedPath} lists key ${files.keyId} already (service ${JSON.stringify(clash.service)}); refusing to add it twice`, { details: { path: trustedPath } })
      const added = parseTrustedProducers(
        formatTrustedProducers([...producers, { keyId: files.keyId, service: args.service, publicKeyPem: files.publicKeyPem, addedAt: new Date().toISOString() }]),
        trustedPath,
      )
      // Checked as the writer will read it (entry count, key id) before it replaces the file the writer trusts.
      replaceFileSync(trustedPath, formatTrustedProducers(added.producers))
      stdout.write(
        [
          `private key:  ${files.privatePath} (mode 0600)`,
          `public key:   ${files.publicPath}`,
          `key id:       ${files.keyId}`,
          `service:      ${args.service}`,
          `trusted file: ${trustedPath} (${added.producers.length} producer key${added.producers.length === 1 ? '' : 's'})`,
          `give the private key to ${args.service} only (SDK option signingKey); the chain writer reads the trusted file and accepts batches signed with this key as ${args.service}'s.`,
          '',
        ].join('\n'),
      )
    } catch (err) {
      // A key nobody trusts would only mislead; removing it lets the command be rerun as it was.
      rmSync(files.privatePath, { force: true })
      rmSync(files.publicPath, { force: true })
      throw err
    }
  } finally {
    lock.release()
  }
  return 0
}

/** The trusted file as loaded, undefined when there is none yet (its directory is then made private for it). */
function trustedProducersOrNone(path: string): TrustedProducers | undefined {
  try {
    return loadTrustedProducers(path)
  } catch (err) {
    if (!isReadtrailError(err) || err.code !== 'TRUSTED_PRODUCERS_MISSING') throw err
    ensurePrivateDirectory({ dir: dirname(path), holds: 'the trusted-producers file' })
    return undefined
  }
}

function makeKeyFiles(privatePath: string, service: string): ReturnType<typeof generateKeyFiles> {
  try {
    return generateKeyFiles(privatePath)
  } catch (err) {
    // The checkpoint-key helper writes the pair; its refusals are about a producer key here.
    if (isReadtrailError(err) && err.code === 'CHECKPOINT_KEY_INVALID') {
      throw new ProducerError('PRODUCER_KEY_INVALID', `producer key for ${JSON.stringify(service)}: ${err.message}`, { cause: err, details: { ...err.details, problem: 'cannot write' } })
    }
    throw err
  }
}

/** `readtrail keys list-producers`: key id, service and added_at of every trusted producer key. */
export function listProducers(args: { trusted: string | undefined; home: string; format: string }, stdout: NodeJS.WritableStream): number {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(args.format)) throw new ReadtrailError('USAGE', `--format must be one of ${OUTPUT_FORMATS.join(', ')}`)
  const trusted = loadTrustedProducers(args.trusted ?? defaultTrustedProducersPath(args.home))
  const rows = trusted.producers.map((p) => ({ key_id: p.keyId, service: p.service, added_at: p.addedAt }))
  stdout.write(`${formatRows(rows, ['key_id', 'service', 'added_at'], args.format as OutputFormat)}\n`)
  return 0
}
