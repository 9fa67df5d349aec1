import { generateKeyFiles } from '../checkpoints/keys.js'
import { ReadtrailError } from '../common/errors.js'
import type { AppConfig } from './config.js'
import { generateProducerKey, listProducers } from './producer-keys-command.js'

/** `readtrail keys …` as parsed: --out as given (each kind of key has its own default path). */
export interface KeysArgs {
  sub: string | undefined
  out?: string | undefined
  verifier?: boolean | undefined
  producer?: string | undefined
  trusted?: string | undefined
  format?: string | undefined
}

/** Where each kind of key goes when no --out says. */
export interface KeyPaths {
  checkpointKey: string
  verifierKey: string
  /** READTRAIL_HOME: producer keys live under it. */
  home: string
  /** READTRAIL_TRUSTED_PRODUCERS: the file `consume` trusts, where new producer keys are added. */
  trustedProducers: string
}

/** The default key paths of this configuration and environment. */
export function keyPathsOf(config: Readonly<AppConfig>, env: NodeJS.ProcessEnv): KeyPaths {
  // cli/config.ts resolves the same home for the other state files; AppConfig does not carry it.
  return { checkpointKey: config.checkpoints.keyPath, verifierKey: config.verifier.keyPath, home: env['READTRAIL_HOME'] || '.readtrail', trustedProducers: config.producers.trustedPath }
}

const USAGE = 'usage: readtrail keys generate [--verifier | --producer SERVICE], readtrail keys list-producers'

/**
 * `readtrail keys generate [--verifier | --producer SERVICE] [--out PATH]`:
 * writes a new key pair and prints where it went: the checkpoint signing key
 * (chain writer), with `--verifier` the key verify signs its state with, with
 * `--producer` a service's batch-signing key (also added to the trusted
 * producers). `readtrail keys list-producers` prints the trusted producers.
 * Only public halves are printed; a private key never leaves its 0600 file.
 */
export function keysCommand(args: KeysArgs, paths: KeyPaths, stdout: NodeJS.WritableStream = process.stdout): number {
  if (args.sub === 'list-producers') return listProducers({ trusted: args.trusted ?? paths.trustedProducers, home: paths.home, format: args.format ?? 'table' }, stdout)
  if (args.sub !== 'generate') {
    throw new ReadtrailError('USAGE', `${args.sub === undefined ? 'missing keys subcommand' : `unknown keys subcommand ${JSON.stringify(args.sub)}`}; ${USAGE}`)
  }
  if (args.producer !== undefined) {
    if (args.verifier) throw new ReadtrailError('USAGE', '--producer and --verifier exclude each other: a key serves one purpose')
    return generateProducerKey({ service: args.producer, out: args.out, trusted: args.trusted ?? paths.trustedProducers, home: paths.home }, stdout)
  }
  if (args.trusted !== undefined) throw new ReadtrailError('USAGE', '--trusted names where a producer key is trusted: give --producer SERVICE too')
  const files = generateKeyFiles(args.out ?? (args.verifier ? paths.verifierKey : paths.checkpointKey))
  stdout.write(
    [
      `private key: ${files.privatePath} (mode 0600; only ${args.verifier ? 'readtrail verify' : 'the chain writer'} needs it)`,
      `public key:  ${files.publicPath}`,
      `key id:      ${files.keyId}`,
      args.verifier
        ? 'queries, reports and incremental verify need only the .pub file (READTRAIL_VERIFY_PUBLIC_KEY); keep a copy where the store\'s owner cannot write.'
        : 'verifiers need only the .pub file; never copy the private key to them.',
      '',
      files.publicKeyPem.trimEnd(),
      '',
    ].join('\n'),
  )
  return 0
}
