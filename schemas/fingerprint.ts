/**
 * CRC-64-AVRO (the Rabin fingerprint from the Avro specification) of a
 * schema's Parsing Canonical Form. Single-object encoding carries it so a
 * reader needs no schema registry.
 */
const EMPTY = 0xc15d213aa4d7a795n
const MASK = 0xffffffffffffffffn

const TABLE: bigint[] = (() => {
  const table: bigint[] = []
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i)
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK)
    table.push(fp)
  }
  return table
})()

/** Fingerprint as an unsigned 64-bit integer. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let fp = EMPTY
  for (const byte of bytes) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(byte)) & 0xffn)]!
  return fp
}

/** The 8 bytes single-object encoding puts after the marker: little-endian. */
export function fingerprintBytes(fp: bigint): Buffer {
  const buf = Buffer.alloc(8)
  buf.writeBigUInt64LE(fp)
  return buf
}
