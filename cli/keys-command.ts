import { ReadtrailError } from '../common/errors.js'
import { generateKeyFiles } from '../checkpoints/keys.js'

/**
 * `readtrail keys generate [--verifier] [--out PATH]`: writes a new key pair
 * and prints where it went: the checkpoint signing key (chain writer), or
 * with `--verifier` the key verify signs its state with. Only the public half
 * is printed; the private key never leaves its 0600 file.
 */
export function keysCommand(args: { sub: string | undefined; out: string; verifier?: boolean }, stdout: NodeJS.WritableStream = process.stdout): number {
  if (args.sub !== 'generate') {
    throw new ReadtrailError('USAGE', `${args.sub === undefined ? 'missing keys subcommand' : `unknown keys subcommand ${JSON.stringify(args.sub)}`}; usage: readtrail keys generate [--verifier]`)
  }
  const files = generateKeyFiles(args.out)
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
