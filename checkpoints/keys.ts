import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { isReadtrailError } from '../common/errors.js'
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from '../common/private-dir.js'
import { keyId } from './checkpoint.js'
import { CheckpointError } from './errors.js'

/** The key the chain writer signs checkpoints with. */
export interface SigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  /** keyId(publicKey): what every checkpoint names in `key_id`. */
  keyId: string
  path: string
}

export interface GeneratedKeyFiles {
  privatePath: string
  publicPath: string
  publicKeyPem: string
  keyId: string
}

export interface LoadedPublicKey {
  publicKey: KeyObject
  keyId: string
  pem: string
  path: string
}

// A real SPKI PEM of an Ed25519 key is about 113 characters; the bound only
// keeps an attacker's evidence bundle from handing the parser megabytes.
const MAX_PEM_CHARS = 16 * 1024

/**
 * Writes a new Ed25519 key pair: the private key (PKCS#8 PEM, 0600) at
 * `privatePath` and the public key (SPKI PEM, 0600 too: it is handed out by
 * copying) at `${privatePath}.pub`, in a directory created 0700; an existing
 * directory others can reach is refused (DIRECTORY_NOT_PRIVATE), since whoever
 * can write there can swap the key. Never overwrites: replacing a signing key
 * silently would orphan every checkpoint signed with the old one.
 */
export function generateKeyFiles(privatePath: string): GeneratedKeyFiles {
  const publicPath = `${privatePath}.pub`
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  try {
    ensurePrivateDirectory({ dir: dirname(privatePath), holds: 'checkpoint keys' })
  } catch (cause) {
    if (isReadtrailError(cause)) throw cause
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `cannot create the directory for ${privatePath}: ${(cause as Error).message}`, { cause, details: { path: privatePath } })
  }
  // Both files are checked before either is written, so a refusal leaves nothing half-made.
  for (const path of [privatePath, publicPath]) refuseExisting(path)
  writeNewFile(privatePath, privateKey, PRIVATE_FILE_MODE)
  try {
    writeNewFile(publicPath, publicKey, PRIVATE_FILE_MODE)
  } catch (err) {
    // A private key without its public half cannot be handed to verifiers; remove it so the command can simply be rerun.
    try {
      unlinkSync(privatePath)
    } catch {
      // The original error says more than this one.
    }
    throw err
  }
  return { privatePath, publicPath, publicKeyPem: publicKey, keyId: keyId(createPublicKey(publicKey)) }
}

function refuseExisting(path: string): void {
  let exists = true
  try {
    statSync(path)
  } catch (cause) {
    if (errnoOf(cause) !== 'ENOENT') throw new CheckpointError('CHECKPOINT_KEY_INVALID', `cannot inspect ${path}: ${(cause as Error).message}`, { cause, details: { path } })
    exists = false
  }
  if (exists) throw alreadyExists(path)
}

function alreadyExists(path: string, cause?: unknown): CheckpointError {
  return new CheckpointError('CHECKPOINT_KEY_INVALID', `${path} already exists; refusing to overwrite a key`, { cause, details: { path } })
}

/** 'wx' so a file created between the check and the write is still never overwritten. */
function writeNewFile(path: string, text: string, mode: number): void {
  let fd: number
  try {
    fd = openSync(path, 'wx', mode)
  } catch (cause) {
    if (errnoOf(cause) === 'EEXIST') throw alreadyExists(path, cause)
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `cannot create ${path}: ${(cause as Error).message}`, { cause, details: { path } })
  }
  try {
    writeSync(fd, text)
    // A key lost to a crash right after generation would leave checkpoints nobody can verify.
    fsyncSync(fd)
  } catch (cause) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `cannot write ${path}: ${(cause as Error).message}`, { cause, details: { path } })
  } finally {
    closeSync(fd)
  }
}

/** Loads the Ed25519 private key the chain writer signs with; refuses one others can read. */
export function loadSigningKey(path: string): SigningKey {
  const mode = keyFileMode(path, 'signing key')
  // Anyone who can read the private key can forge checkpoints for edited rows.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`, {
      details: { path, mode: (mode & 0o777).toString(8) },
    })
  }
  const pem = readKeyFile(path, 'signing key')
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' })
  } catch (cause) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${path} is not a PEM private key: ${(cause as Error).message}`, { cause, details: { path } })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${path} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519`, {
      details: { path, key_type: privateKey.asymmetricKeyType },
    })
  }
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, keyId: keyId(publicKey), path }
}

/** Loads the Ed25519 public key (SPKI PEM) that verifies checkpoints. */
export function loadPublicKey(path: string): LoadedPublicKey {
  const pem = readKeyFile(path, 'public key')
  try {
    return { ...publicKeyFromPem(pem), pem, path }
  } catch (err) {
    if (err instanceof CheckpointError) throw new CheckpointError(err.code, `${path}: ${err.message}`, { cause: err, details: { ...err.details, path } })
    throw err
  }
}

/**
 * Parses an Ed25519 public key from SPKI PEM text. The text may come from an
 * evidence bundle, so it is attacker-controlled: only a PUBLIC KEY block is
 * accepted (Node would also derive a public key from a private key or a
 * certificate, which must not pass for one).
 */
export function publicKeyFromPem(pem: string): { publicKey: KeyObject; keyId: string } {
  if (pem.length > MAX_PEM_CHARS) throw new CheckpointError('CHECKPOINT_KEY_INVALID', `public key PEM is ${pem.length} characters, more than ${MAX_PEM_CHARS}`)
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', 'expected a public key but found a private key; verifiers need only the .pub file')
  }
  if (!/^-----BEGIN PUBLIC KEY-----\r?\n/.test(pem.trimStart())) throw new CheckpointError('CHECKPOINT_KEY_INVALID', 'not an SPKI PEM public key (no BEGIN PUBLIC KEY line)')
  let publicKey: KeyObject
  try {
    publicKey = createPublicKey({ key: pem, format: 'pem' })
  } catch (cause) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `not a readable PEM public key: ${(cause as Error).message}`, { cause })
  }
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'ed25519') {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `holds a ${publicKey.asymmetricKeyType ?? 'unknown'} key; checkpoints are verified with Ed25519`, {
      details: { key_type: publicKey.asymmetricKeyType },
    })
  }
  return { publicKey, keyId: keyId(publicKey) }
}

function keyFileMode(path: string, what: string): number {
  try {
    return statSync(path).mode
  } catch (cause) {
    throw keyFileError(path, what, cause)
  }
}

function readKeyFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (cause) {
    throw keyFileError(path, what, cause)
  }
}

function keyFileError(path: string, what: string, cause: unknown): CheckpointError {
  if (errnoOf(cause) === 'ENOENT') {
    return new CheckpointError('CHECKPOINT_KEY_MISSING', `no checkpoint ${what} at ${path}; run \`readtrail keys generate\` to create one`, { cause, details: { path } })
  }
  return new CheckpointError('CHECKPOINT_KEY_INVALID', `cannot read the checkpoint ${what} at ${path}: ${(cause as Error).message}`, { cause, details: { path } })
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}
