import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { z } from 'zod'

/** Bytes of a file's beginning hashed into its identity. */
export const HEAD_BYTES = 1024

/**
 * What makes a log file the same file across a rename (device and inode)
 * and tells it from a new file that reused a deleted one's inode (a hash of
 * its first bytes, which a log file never rewrites).
 */
export const FileIdentity = z
  .object({
    path: z.string().min(1).max(4096),
    dev: z.string().regex(/^\d{1,20}$/),
    ino: z.string().regex(/^\d{1,20}$/),
    head_len: z.number().int().min(0).max(HEAD_BYTES),
    head_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict()
export type FileIdentity = z.output<typeof FileIdentity>

/** The identity of an open file: its device, inode and the hash of up to HEAD_BYTES of its beginning. */
export async function identityOf(handle: FileHandle, path: string): Promise<FileIdentity> {
  const stat = await handle.stat({ bigint: true })
  const head = await readHead(handle, Math.min(HEAD_BYTES, Number(stat.size)))
  return { path, dev: stat.dev.toString(), ino: stat.ino.toString(), head_len: head.length, head_sha256: createHash('sha256').update(head).digest('hex') }
}

/** Whether `handle` is the file `identity` describes: same device and inode, and the same first head_len bytes. */
export async function isSameFile(handle: FileHandle, identity: FileIdentity): Promise<boolean> {
  const stat = await handle.stat({ bigint: true })
  if (stat.dev.toString() !== identity.dev || stat.ino.toString() !== identity.ino) return false
  const head = await readHead(handle, identity.head_len)
  return head.length === identity.head_len && createHash('sha256').update(head).digest('hex') === identity.head_sha256
}

async function readHead(handle: FileHandle, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await handle.read(buffer, got, length - got, got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return buffer.subarray(0, got)
}
