import { dirname, join } from 'node:path'
import { z } from 'zod'
import { parseConfig } from '../common/config.js'
import type { StateDirectory } from '../common/private-dir.js'
import { defaultBrokers, KafkaConnection } from '../common/kafka.js'
import { StoreConfig } from '../store/config.js'
import { SubjectKeysText } from '../queries/subject-keys.js'

/** Service configuration: environment variables, overridden by flags. */
export const AppConfig = z
  .object({
    kafka: KafkaConnection,
    /** @default 'readtrail.access' */
    topic: z.string().min(1),
    /** @default 'readtrail-chain-writer' */
    groupId: z.string().min(1),
    /** @default 3 */
    partitions: z.number().int().min(1).max(1000),
    /** @default 30000 */
    sessionTimeoutMs: z.number().int().min(6000).max(300_000),
    /** The chain writer's fetchLingerMs. @default 0 */
    fetchLingerMs: z.number().int().min(0).max(5000),
    store: StoreConfig,
    checkpoints: z
      .object({
        /** Ed25519 private key (PKCS#8 PEM, mode 0600) the chain writer signs with. */
        keyPath: z.string().min(1),
        /** Public key (SPKI PEM) verify checks signatures with. */
        publicKeyPath: z.string().min(1),
        /** Append-only checkpoint log, one JSON line per checkpoint. */
        logPath: z.string().min(1),
        /** The Kafka copy of the checkpoints. */
        topic: z.string().min(1),
        /** Longest time between two checkpoints of a growing chain. */
        intervalMs: z.number().int().min(100).max(3_600_000),
      })
      .strict(),
    /** Where verify records anchors and verdicts between runs (signed with the verifier key). */
    verifyStatePath: z.string().min(1),
    verifier: z
      .object({
        /** Ed25519 private key (PKCS#8 PEM, 0600) verify signs its state with; made on the first full verify if absent. */
        keyPath: z.string().min(1),
        /** Public key queries, reports and incremental runs check the state's signature with. */
        publicKeyPath: z.string().min(1),
      })
      .strict(),
    producers: z
      .object({
        /** The trusted-producers file: whose signed batches the chain writer stores. */
        trustedPath: z.string().min(1),
        /** Store unsigned messages too (migration from unsigned producers only). */
        allowUnsigned: z.boolean(),
      })
      .strict(),
    /** Which part of which table's record id names the data subject (queries/subject-keys.ts). */
    subjectKeys: SubjectKeysText,
  })
  .strict()

export type AppConfig = z.output<typeof AppConfig>

/** Environment variables readtrail reads, with what each sets. */
export const ENVIRONMENT = {
  READTRAIL_KAFKA_BROKERS: 'comma-separated host:port list (default 127.0.0.1:$READTRAIL_KAFKA_PORT, the broker scripts/kafka.sh starts)',
  READTRAIL_KAFKA_PORT: 'port of the local broker scripts/kafka.sh starts (default 19092)',
  READTRAIL_TOPIC: 'access-event topic (default readtrail.access); its dead-letter topic is <topic>.dlq',
  READTRAIL_TOPIC_PARTITIONS: 'partitions (= chains) when readtrail creates the topic (default 3)',
  READTRAIL_GROUP_ID: 'chain-writer consumer group (default readtrail-chain-writer)',
  READTRAIL_KAFKA_SESSION_TIMEOUT_MS: 'how long the group waits for a silent chain writer before failing over (default 30000, at least 6000)',
  READTRAIL_FETCH_LINGER_MS: 'how long the chain writer lets the broker hold a fetch for a fuller insert under a trickle of reads (default 0 = insert at once; 250 cuts the writer CPU under a steady trickle, and widens the time window repair searches to rebuild a deleted insert)',
  READTRAIL_CLICKHOUSE_URL: 'ClickHouse server URL; unset = embedded chDB engine',
  READTRAIL_CLICKHOUSE_USER: 'ClickHouse user (default "default")',
  READTRAIL_CLICKHOUSE_PASSWORD: 'ClickHouse password (default empty)',
  READTRAIL_CLICKHOUSE_DATABASE: 'database (default readtrail)',
  READTRAIL_TRUSTED_PRODUCERS: 'the producing services\' public keys the chain writer accepts signed batches from, made by `readtrail keys generate --producer <service>` (default $READTRAIL_HOME/trusted-producers.json)',
  READTRAIL_ALLOW_UNSIGNED: 'set to 1 to let the chain writer also store unsigned messages (wire-1 producers, producers without signingKey): for migration only, since anyone who can write to the topic can then frame any principal',
  READTRAIL_HOME: 'directory for local state: default parent of the data dir, keys, checkpoint log and verify state (default .readtrail)',
  READTRAIL_DATA_DIR: 'embedded engine data directory (default $READTRAIL_HOME/chdb)',
  READTRAIL_CHECKPOINT_KEY: 'checkpoint signing key, made by `readtrail keys generate` (default $READTRAIL_HOME/keys/checkpoint.key)',
  READTRAIL_CHECKPOINT_PUBLIC_KEY: 'public key verify checks checkpoints with (default <signing key>.pub)',
  READTRAIL_CHECKPOINT_LOG: 'append-only checkpoint log (default $READTRAIL_HOME/checkpoints.jsonl)',
  READTRAIL_CHECKPOINT_INTERVAL_MS: 'longest time between checkpoints of a growing chain (default 10000)',
  READTRAIL_VERIFY_STATE: 'incremental-verify anchors, open failures and verdicts, signed by the verifier key (default $READTRAIL_HOME/verify-state.json)',
  READTRAIL_VERIFY_KEY: 'verifier key that signs the verify state; made by the first full `readtrail verify` or `readtrail keys generate --verifier` (default $READTRAIL_HOME/keys/verifier.key)',
  READTRAIL_VERIFY_PUBLIC_KEY: 'public key queries, reports and incremental verify check the verify state with (default <verifier key>.pub)',
  READTRAIL_SUBJECT_KEYS: 'where the data subject is in record ids, per table: e.g. practice.patients=id,practice.treatments=key1 (subject-access-report, breach subjects)',
  READTRAIL_LOG_LEVEL: 'pino level (default info)',
} as const

export interface ConfigOverrides {
  brokers?: string
  topic?: string
  database?: string
  dataDir?: string
  publicKey?: string
  checkpointLog?: string
}

/** A boolean environment variable: 1, true, yes or on (any case). */
function flagOn(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim())
}

export function loadAppConfig(env: NodeJS.ProcessEnv, overrides: ConfigOverrides = {}): Readonly<AppConfig> {
  const brokers = overrides.brokers ?? env['READTRAIL_KAFKA_BROKERS']
  const partitions = env['READTRAIL_TOPIC_PARTITIONS']
  const home = env['READTRAIL_HOME'] || '.readtrail'
  const topic = overrides.topic ?? env['READTRAIL_TOPIC'] ?? 'readtrail.access'
  const keyPath = env['READTRAIL_CHECKPOINT_KEY'] || join(home, 'keys', 'checkpoint.key')
  const verifierKey = env['READTRAIL_VERIFY_KEY'] || join(home, 'keys', 'verifier.key')
  return parseConfig(
    AppConfig,
    {
      kafka: {
        brokers: brokers ? brokers.split(',').map((b) => b.trim()).filter(Boolean) : defaultBrokers(env),
        clientId: 'readtrail',
        connectionTimeoutMs: 10_000,
      },
      topic,
      groupId: env['READTRAIL_GROUP_ID'] ?? 'readtrail-chain-writer',
      partitions: partitions === undefined ? 3 : Number(partitions),
      sessionTimeoutMs: Number(env['READTRAIL_KAFKA_SESSION_TIMEOUT_MS'] ?? 30_000),
      fetchLingerMs: Number(env['READTRAIL_FETCH_LINGER_MS'] ?? 0),
      store: {
        url: env['READTRAIL_CLICKHOUSE_URL'] || undefined,
        username: env['READTRAIL_CLICKHOUSE_USER'] ?? 'default',
        password: env['READTRAIL_CLICKHOUSE_PASSWORD'] ?? '',
        database: overrides.database ?? env['READTRAIL_CLICKHOUSE_DATABASE'] ?? 'readtrail',
        dataDir: overrides.dataDir ?? env['READTRAIL_DATA_DIR'] ?? join(home, 'chdb'),
      },
      checkpoints: {
        keyPath,
        publicKeyPath: overrides.publicKey ?? (env['READTRAIL_CHECKPOINT_PUBLIC_KEY'] || `${keyPath}.pub`),
        logPath: overrides.checkpointLog ?? (env['READTRAIL_CHECKPOINT_LOG'] || join(home, 'checkpoints.jsonl')),
        topic: `${topic}.checkpoints`,
        intervalMs: Number(env['READTRAIL_CHECKPOINT_INTERVAL_MS'] ?? 10_000),
      },
      verifyStatePath: env['READTRAIL_VERIFY_STATE'] || join(home, 'verify-state.json'),
      verifier: { keyPath: verifierKey, publicKeyPath: env['READTRAIL_VERIFY_PUBLIC_KEY'] || `${verifierKey}.pub` },
      producers: { trustedPath: env['READTRAIL_TRUSTED_PRODUCERS'] || join(home, 'trusted-producers.json'), allowUnsigned: flagOn(env['READTRAIL_ALLOW_UNSIGNED']) },
      subjectKeys: env['READTRAIL_SUBJECT_KEYS'] ?? '',
    },
    'readtrail',
  )
}

/**
 * The directories this configuration keeps local state in: what the store
 * holds (personal data), the private keys, and the files a verifier trusts
 * (checkpoint log, verify state). Every command that opens the store checks
 * them private first (cli/runtime.ts). Public keys are not among them: they
 * are made to be handed out, and may sit anywhere.
 */
export function stateDirectoriesOf(config: Readonly<AppConfig>): StateDirectory[] {
  return [
    ...(config.store.url === undefined ? [{ dir: config.store.dataDir, holds: 'the embedded store', setting: 'READTRAIL_DATA_DIR (--data-dir)' }] : []),
    { dir: dirname(config.checkpoints.logPath), holds: 'the checkpoint log', setting: 'READTRAIL_CHECKPOINT_LOG' },
    { dir: dirname(config.checkpoints.keyPath), holds: 'the checkpoint signing key', setting: 'READTRAIL_CHECKPOINT_KEY' },
    { dir: dirname(config.verifyStatePath), holds: 'the verify state', setting: 'READTRAIL_VERIFY_STATE' },
    { dir: dirname(config.verifier.keyPath), holds: 'the verifier key', setting: 'READTRAIL_VERIFY_KEY' },
  ]
}
