import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import avro from 'avsc'
import { crc64Avro } from './fingerprint.js'

/** One released version of the access-event schema. */
export interface SchemaVersion {
  readonly version: number
  readonly file: string
  readonly type: avro.Type
  /** CRC-64-AVRO of the Parsing Canonical Form, unsigned. */
  readonly fingerprint: bigint
}

export interface SchemaRegistry {
  /** The version producers write and consumers resolve every message to. */
  readonly current: SchemaVersion
  readonly versions: readonly SchemaVersion[]
  byFingerprint(fp: bigint): SchemaVersion | undefined
  /** Decoder from a writer version to the current version (cached). */
  resolverFor(writer: SchemaVersion): avro.Resolver | undefined
}

/**
 * The schema families released in schemas/avro: single events (wire v1),
 * signed batches (wire v2 on), and the two side streams with chains of their
 * own: a database's audit log entries and extraction-guard alerts.
 */
export type SchemaFamily = 'access-event' | 'access-batch' | 'db-audit-batch' | 'alert-batch'

const fileRe = (family: SchemaFamily) => new RegExp(`^${family}\\.v(\\d+)\\.avsc$`)

/** Default folder: schemas/avro beside this file (copied next to the build output). */
export const DEFAULT_SCHEMA_DIR = fileURLToPath(new URL('./avro/', import.meta.url))

export function parseSchemaVersion(file: string, text: string, family: SchemaFamily = 'access-event'): SchemaVersion {
  const match = fileRe(family).exec(file)
  if (!match) throw new Error(`schema file ${file} is not named ${family}.v<N>.avsc`)
  // Plain records: decoded events are validated as data, with no methods attached.
  const type = avro.Type.forSchema(JSON.parse(text) as avro.Schema, { omitRecordMethods: true })
  // avsc's schema() is the Parsing Canonical Form the Avro spec fingerprints.
  const canonical = JSON.stringify(type.schema())
  return Object.freeze({ version: Number(match[1]), file, type, fingerprint: crc64Avro(Buffer.from(canonical, 'utf8')) })
}

/**
 * Loads every released version of one family; the highest version number is
 * current. Version numbers count wire versions across families (events are
 * v1, batches v2 on), so a stored row's schema_version names one file.
 */
export function loadSchemaRegistry(dir: string = DEFAULT_SCHEMA_DIR, family: SchemaFamily = 'access-event'): SchemaRegistry {
  const re = fileRe(family)
  const versions = readdirSync(dir)
    .filter((f) => re.test(f))
    .map((f) => parseSchemaVersion(f, readFileSync(`${dir}/${f}`, 'utf8'), family))
    .sort((a, b) => a.version - b.version)
  return createSchemaRegistry(versions)
}

export function createSchemaRegistry(versions: SchemaVersion[]): SchemaRegistry {
  const current = versions[versions.length - 1]
  if (!current) throw new Error('no access-event schema versions found')
  const byFp = new Map(versions.map((v) => [v.fingerprint, v]))
  const resolvers = new Map<bigint, avro.Resolver | undefined>()
  return Object.freeze({
    current,
    versions: Object.freeze([...versions]),
    byFingerprint: (fp: bigint) => byFp.get(fp),
    resolverFor(writer: SchemaVersion) {
      if (writer === current) return undefined
      let resolver = resolvers.get(writer.fingerprint)
      if (!resolvers.has(writer.fingerprint)) {
        resolver = current.type.createResolver(writer.type)
        resolvers.set(writer.fingerprint, resolver)
      }
      return resolver
    },
  })
}
