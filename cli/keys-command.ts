import { ReadtrailError } from '../common/errors.js'
import { generateKeyFiles } from '../checkpoints/keys.js'

/**
 * `readtrail keys generate --out PATH`: writes a new checkpoint signing key
 * pair and prints where it went. Only the public half is printed; the private
 * key never leaves its 0600 file.
 */
export function keysCommand(args: { sub: string | undefined; out: string }, stdout: NodeJS.WritableStream = process.stdout): number {
  if (args.sub !== 'generate') {
    throw new ReadtrailError('USAGE', `${args.sub === undefined ? 'missing keys subcommand' : `unknown keys subcommand ${JSON.stringify(args.sub)}`}; usage: readtrail keys generate`)
  }
  const files = generateKeyFiles(args.out)
  stdout.write(
    [
      `private key: ${files.privatePath} (mode 0600; only the chain writer needs it)`,
      `public key:  ${files.publicPath}`,
      `key id:      ${files.keyId}`,
      'verifiers need only the .pub file; never copy the private key to them.',
      '',
      files.publicKeyPem.trimEnd(),
      '',
    ].join('\n'),
  )
  return 0
}
