import type { KeyObject } from 'node:crypto'
import { open } from 'node:fs/promises'
import { isValidSignature } from '../checkpoints/checkpoint.js'
import { parseCheckpointText } from '../checkpoints/checkpoint-log.js'
import { CheckpointError } from '../checkpoints/errors.js'

export interface SignedThroughRequest {
  /** The checkpoint log (checkpoints.jsonl). */
  logPath: string
  database: string
  /** The checkpoint public key and its id; null: no key, so nothing counts as signed. */
  key: { publicKey: KeyObject; keyId: string } | null
  /** Chains the answer uses; reading stops once each has a valid checkpoint. */
  chains: readonly string[]
  /** Most bytes read from the end of the file. @default 8 MiB */
  maxBytes?: number
}

const CHUNK = 256 * 1024

/**
 * Per chain, the seq of its newest checkpoint whose signature verifies under
 * the checkpoint key: what a query may call signed. Read backwards from the
 * end of the append-only log (a checkpoint line is ~560 bytes), so a large
 * log costs a chunk or two; a chain whose newest checkpoint lies beyond
 * `maxBytes` from the end counts as unsigned, the loud side. Lines are
 * attacker-controlled: a line that does not parse or verify is skipped, not
 * believed, and never stops the scan.
 */
export async function readSignedThrough(request: SignedThroughRequest): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const wanted = new Set(request.chains)
  if (!request.key || wanted.size === 0) return out
  const key = request.key
  let handle
  try {
    handle = await open(request.logPath, 'r')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return out
    throw unavailable(request.logPath, cause)
  }
  try {
    const size = (await handle.stat()).size
    const floor = Math.max(0, size - (request.maxBytes ?? 8 * 1024 * 1024))
    let end = size
    // Bytes of a line cut by the previous chunk's start, carried into this one.
    let carry = Buffer.alloc(0)
    while (end > floor && wanted.size > 0) {
      const start = Math.max(floor, end - CHUNK)
      const buf = Buffer.alloc(end - start)
      await handle.read(buf, 0, buf.length, start)
      const text = Buffer.concat([buf, carry])
      const lines = text.toString('utf8').split('\n')
      // Unless at the file's start (or the bound), the first piece may be half a line: keep it for the next chunk.
      carry = start > floor ? Buffer.from(lines.shift() ?? '', 'utf8') : Buffer.alloc(0)
      // Newest last in the file: walk each chunk from its end.
      for (let i = lines.length - 1; i >= 0; i -= 1) {
        const line = lines[i]!
        if (line === '') continue
        const parsed = parseCheckpointText(line)
        if (!parsed.ok) continue
        const cp = parsed.checkpoint
        if (cp.database !== request.database || cp.key_id !== key.keyId || !isValidSignature(cp, key.publicKey)) continue
        if (cp.seq > (out[cp.chain_id] ?? 0)) out[cp.chain_id] = cp.seq
        wanted.delete(cp.chain_id)
      }
      end = start
    }
  } catch (cause) {
    throw unavailable(request.logPath, cause)
  } finally {
    await handle.close()
  }
  return out
}

function unavailable(path: string, cause: unknown): CheckpointError {
  return new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', `checkpoint log ${path}: cannot read which rows are signed: ${(cause as Error).message}`, { cause, details: { path } })
}
