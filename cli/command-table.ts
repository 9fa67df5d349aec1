import { SAVED_QUERIES } from '../queries/catalog.js'
import { ALERT_ACTIONS } from '../schemas/alert-event.js'
import { OUTPUT_FORMATS } from './format-rows.js'

/**
 * The one table of readtrail's commands, subcommands and flags. The parser
 * (cli/command-line.ts), the help (cli/help.ts), the "did you mean"
 * suggestions and the shell completion scripts (cli/completion.ts) are all
 * read from it, so a flag added here is parsed, documented, suggested and
 * completed at once, and one that is not here is refused.
 */
export interface FlagSpec {
  type: 'boolean' | 'string'
  short?: string
  multiple?: boolean
  /** Placeholder of the value in help, e.g. `FILE`. */
  value?: string
  help: string
  /** Values the completion offers. */
  choices?: readonly string[]
  /** The completion offers file names. */
  file?: boolean
}

export const FLAGS = {
  help: { type: 'boolean', short: 'h', help: 'this help; `readtrail <command> --help` for one command' },
  version: { type: 'boolean', help: 'print the version' },
  json: { type: 'boolean', help: 'machine-readable output' },
  'skip-views': { type: 'boolean', help: 'do not compare the query views with access_log (the report says so)' },
  'in-db': { type: 'boolean', help: 're-hash the chains inside ClickHouse (default)' },
  independent: { type: 'boolean', help: 'stream rows out and re-hash them here (trusts nothing ClickHouse computes)' },
  workers: { type: 'string', value: 'N', help: 'parallel chain scans for --independent, 1 to 64 (default min(4, cores))' },
  'since-checkpoint': { type: 'boolean', help: "only rows after each chain's last verified checkpoint (O(new rows))" },
  every: { type: 'string', value: 'DURATION', help: 'keep running, one incremental run per period (e.g. 5m); exit 1 with a READTRAIL_INTEGRITY_ALERT line on the first damage' },
  'full-every': { type: 'string', value: 'DURATION', help: 'with --every: a full run whenever this long has passed since the last one (default 24h)' },
  acknowledge: { type: 'string', multiple: true, value: 'producer:ID:SEQ|CHAIN:SEQ', help: 'record in the signed verify state that this hole was investigated (needs --reason)' },
  by: { type: 'string', value: 'NAME', help: 'who acknowledges (with --acknowledge)' },
  reason: { type: 'string', value: 'TEXT', help: 'why the hole is acknowledged (with --acknowledge)' },
  verifier: { type: 'boolean', help: 'make the key verify signs its state with, not the checkpoint signing key' },
  producer: { type: 'string', value: 'SERVICE', help: 'keys generate: make the key this producing service signs its batches with, and trust it (default --out $READTRAIL_HOME/producer-keys/SERVICE.pem); db-audit: the name its key is trusted for (default the key file name without .pem)' },
  trusted: { type: 'string', value: 'FILE', file: true, help: 'the trusted-producers file the chain writer reads (default $READTRAIL_HOME/trusted-producers.json)' },
  grace: { type: 'string', value: 'DURATION', help: 'producer holes younger than this are "in flight", not missing (default 2m)' },
  'no-kafka-checkpoints': { type: 'boolean', help: "check signatures against the checkpoint file only, not its Kafka copy" },
  'no-checkpoints': { type: 'boolean', help: 'skip the signed checkpoints altogether (the report says so)' },
  'public-key': { type: 'string', value: 'FILE', file: true, help: 'the checkpoint public key to trust (default <signing key>.pub)' },
  'checkpoint-log': { type: 'string', value: 'FILE', file: true, help: 'the checkpoint log (default $READTRAIL_HOME/checkpoints.jsonl)' },
  out: { type: 'string', value: 'FILE', file: true, help: 'write here (created 0600; an existing file is refused unless --force)' },
  'dry-run': { type: 'boolean', help: 'say what would be repaired, change nothing (exit 3 when there is something)' },
  force: { type: 'boolean', help: 'replace an existing --out file (atomically; a symlink there is replaced, never followed)' },
  chain: { type: 'string', value: 'ID', help: 'only this chain, e.g. readtrail.access/0' },
  'quarantine-unsigned': { type: 'boolean', help: 'also move unsigned rows Kafka does not vouch for into quarantined_rows' },
  'republish-checkpoints': { type: 'boolean', help: 'also refill the checkpoint topic from the file' },
  'max-candidates': { type: 'string', value: 'N', help: 'ingested_at values tried per gap (default 2000000)' },
  'case-id': { type: 'string', value: 'ID', help: 'the case the report is an annex to (header and every page)' },
  author: { type: 'string', value: 'NAME', help: 'who prepares the report (header, sign-off, every page)' },
  tz: { type: 'string', value: 'ZONE', help: 'IANA time zone the principal report judges working hours in (default Europe/Berlin, stated in the report)' },
  event: { type: 'string', value: 'ID', help: 'the event id (a UUID, shown by who-touched-record --format json)' },
  list: { type: 'boolean', help: 'list the saved queries with their parameters' },
  from: { type: 'string', value: 'TIME', help: 'from this time on (ISO 8601: 2026-11-26 or 2026-11-26T02:10:00Z; inclusive)' },
  to: { type: 'string', value: 'TIME', help: 'before this time (exclusive)' },
  principal: { type: 'string', value: 'ID', help: 'only this principal' },
  table: { type: 'string', value: 'NAME', help: 'only this table: applicants, registry.applicants or public.patients' },
  action: { type: 'string', value: 'ACTION,…', choices: ALERT_ACTIONS, help: `only these guard actions: ${ALERT_ACTIONS.join(', ')}` },
  source: { type: 'string', value: 'ID', help: "the db-audit reader's id: producer_id of its batches and name of its position file" },
  kind: { type: 'string', value: 'KIND', choices: ['pgaudit', 'server_audit'], help: 'which audit log: pgaudit or server_audit' },
  log: { type: 'string', value: 'DIR|FILE', file: true, help: "PostgreSQL's log directory, or server_audit's file (rotated copies file.1… followed)" },
  'log-format': { type: 'string', value: 'FORMAT', choices: ['csvlog', 'jsonlog'], help: 'pgaudit: csvlog or jsonlog (default from the files present)' },
  tables: { type: 'string', value: 'T1,T2', help: 'sensitive tables, comma-separated: schema.table (PostgreSQL), database.table (MariaDB)' },
  'signing-key': { type: 'string', value: 'FILE', file: true, help: "the reader's Ed25519 key (readtrail keys generate --producer SERVICE)" },
  'state-dir': { type: 'string', value: 'DIR', file: true, help: 'where the position file is kept (default $READTRAIL_HOME/db-audit)' },
  once: { type: 'boolean', help: 'read what is there, publish it, and exit' },
  param: { type: 'string', multiple: true, short: 'p', value: 'NAME=VALUE', help: 'a parameter; repeat for each, lists comma-separated (ips=a,b)' },
  format: { type: 'string', value: 'FORMAT', choices: OUTPUT_FORMATS, help: `output format: ${OUTPUT_FORMATS.join(', ')} (default table)` },
  brokers: { type: 'string', value: 'HOST:PORT,…', help: 'Kafka brokers (READTRAIL_KAFKA_BROKERS)' },
  topic: { type: 'string', value: 'NAME', help: 'access-event topic (READTRAIL_TOPIC)' },
  database: { type: 'string', value: 'NAME', help: 'ClickHouse database (READTRAIL_CLICKHOUSE_DATABASE)' },
  'data-dir': { type: 'string', value: 'DIR', file: true, help: 'embedded store directory (READTRAIL_DATA_DIR)' },
} as const satisfies Record<string, FlagSpec>

export type FlagName = keyof typeof FLAGS

/** Accepted by every command. */
export const GLOBAL_FLAGS: readonly FlagName[] = ['help', 'version']
/** Where the store and the broker are. */
const WHERE: readonly FlagName[] = ['brokers', 'topic', 'database', 'data-dir']
/** Which checkpoints are trusted. */
const TRUST: readonly FlagName[] = ['public-key', 'checkpoint-log']

export interface SubcommandSpec {
  summary: string
  /** Positional arguments after the subcommand, e.g. `FILE`. */
  args?: readonly string[]
  /** Flags beyond the command's own. */
  flags?: readonly FlagName[]
}

/** The first positional of a command: a fixed subcommand, or a name from a catalog (saved query, report kind, shell). */
export interface FirstArgSpec {
  /** What the word is, for messages: `subcommand`, `saved query`, `report kind`. */
  what: string
  placeholder: string
  required: boolean
  choices(): readonly string[]
  /** Fixed subcommands with their own summary, arguments and flags. */
  subcommands?: Readonly<Record<string, SubcommandSpec>>
}

export interface CommandSpec {
  name: string
  summary: string
  usage: readonly string[]
  first?: FirstArgSpec
  /** Positional arguments of a command without a first-argument spec. */
  args?: readonly string[]
  flags: readonly FlagName[]
  /** Exit codes, and anything a user must know beyond the flags. */
  details?: readonly string[]
  examples: readonly string[]
}

const QUERY_EXITS = 'exit 0 answered on verified ranges, 3 some rows not yet verified, 4 some rows in ranges that failed verification, 5 some rows after the newest signed checkpoint (unsigned), 2 error'

const fixed = (subs: Readonly<Record<string, SubcommandSpec>>, what = 'subcommand'): FirstArgSpec => ({
  what,
  placeholder: Object.keys(subs).join('|'),
  required: true,
  choices: () => Object.keys(subs),
  subcommands: subs,
})

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'demo',
    summary: 'start/reuse Kafka, run the admissions-registry breach demo on the embedded store',
    usage: ['readtrail demo [--data-dir DIR]'],
    flags: WHERE,
    details: ['The demo wipes and refills its own store (default .readtrail/demo) at every run, and ends by printing the commands that explore it.'],
    examples: ['readtrail demo', 'readtrail demo --data-dir /tmp/readtrail-demo'],
  },
  {
    name: 'consume',
    summary: 'run the chain writer (Kafka → hash-chained rows in ClickHouse) until SIGINT/SIGTERM',
    usage: ['readtrail consume'],
    flags: WHERE,
    details: ['Needs the checkpoint signing key (readtrail keys generate). Creates the store and the topics when missing.'],
    examples: ['readtrail keys generate && readtrail consume', 'READTRAIL_CLICKHOUSE_URL=http://127.0.0.1:8123 readtrail consume --brokers kafka:9092'],
  },
  {
    name: 'query',
    summary: 'run a saved query (readtrail query --list names them)',
    usage: ['readtrail query --list', 'readtrail query <name> --param k=v … [--format table|csv|json|ndjson]'],
    first: { what: 'saved query', placeholder: '<name>', required: false, choices: () => [...SAVED_QUERIES.keys()] },
    flags: ['list', 'param', 'format', ...WHERE, ...TRUST],
    details: [QUERY_EXITS, '`readtrail query <name> --help` lists that query\'s parameters. Never creates a store: a wrong --data-dir is STORE_NOT_FOUND.'],
    examples: [
      'readtrail query --list',
      'readtrail query records-touched-by-principal --param principal=clerk.marta --param from=2026-11-26 --format csv',
      'readtrail query who-touched-record --param table=applicants --param record=104042',
    ],
  },
  {
    name: 'alerts',
    summary: 'what the extraction guard flagged, throttled or refused (the saved query alerts)',
    usage: ['readtrail alerts [--from TIME] [--to TIME] [--principal ID] [--table NAME] [--action ACTION,…] [--format table|csv|json|ndjson]'],
    flags: ['from', 'to', 'principal', 'table', 'action', 'param', 'format', ...WHERE, ...TRUST],
    details: [QUERY_EXITS, 'Oldest first, at most 1000 (--param limit=0 for all). Never creates a store: a wrong --data-dir is STORE_NOT_FOUND.'],
    examples: [
      'readtrail alerts --from 2026-11-26',
      'readtrail alerts --principal clerk.marta --action throttle,refuse --format csv',
      'readtrail alerts --table applicants --from 2026-11-26T00:00:00Z --to 2026-11-27T00:00:00Z --format json',
    ],
  },
  {
    name: 'db-audit',
    summary: "read a database's own audit log (pgAudit csvlog/jsonlog, MariaDB server_audit) and publish reads of sensitive tables to <topic>.db-audit, signed, every entry once",
    usage: ['readtrail db-audit --source ID --kind pgaudit|server_audit --log DIR|FILE --tables T1,T2 --signing-key FILE [--log-format csvlog|jsonlog] [--state-dir DIR] [--producer SERVICE] [--once]'],
    flags: ['source', 'kind', 'log', 'log-format', 'tables', 'signing-key', 'state-dir', 'producer', 'once', 'brokers', 'topic'],
    details: ['Runs until SIGINT/SIGTERM (--once: until caught up). The position is kept in --state-dir (default $READTRAIL_HOME/db-audit). PostgreSQL tables are schema.table, MariaDB database.table, as the audit log names them. exit 0 stopped cleanly, 2 error.'],
    examples: [
      'readtrail db-audit --source pg-main --kind pgaudit --log /var/log/postgresql --log-format csvlog --tables public.patients --signing-key .readtrail/producer-keys/db-audit.pem',
      'readtrail db-audit --source maria-main --kind server_audit --log /var/lib/mysql/server_audit.log --tables shop.people --signing-key db-audit.pem --once',
    ],
  },
  {
    name: 'report',
    summary: 'self-contained HTML report (breach-scope or principal)',
    usage: [
      'readtrail report breach-scope --param k=v … [--out FILE [--force]]',
      'readtrail report principal --param principal=ID [--param from=… --param to=…] [--out FILE [--force]]',
    ],
    first: { what: 'report kind', placeholder: 'breach-scope|principal', required: true, choices: () => ['breach-scope', 'principal'] },
    flags: ['param', 'out', 'force', 'case-id', 'author', 'tz', ...WHERE, ...TRUST],
    details: ['breach-scope takes principals|ips|sessions, from, to [, bucket]; principal takes principal [, from, to].', `exit codes as query: ${QUERY_EXITS}`],
    examples: [
      'readtrail report breach-scope --param principals=clerk.marta --param ips=203.0.113.66 --param from=2026-11-26 --param to=2026-11-27 --out breach.html',
      'readtrail report principal --param principal=clerk.marta --tz Europe/Rome --case-id INC-2026-114 --author "A. Rossi"',
    ],
  },
  {
    name: 'verify',
    summary: 're-hash every chain, check it against the signed checkpoints, the query views and producer sequences',
    usage: ['readtrail verify [--in-db | --independent [--workers N]] [--since-checkpoint] [--every DURATION [--full-every DURATION]] [--json]'],
    flags: ['in-db', 'independent', 'workers', 'since-checkpoint', 'every', 'full-every', 'grace', 'acknowledge', 'reason', 'by', 'skip-views', 'no-kafka-checkpoints', 'no-checkpoints', 'json', ...WHERE, ...TRUST],
    details: ['exit 0 intact, 1 damaged, 2 error. Never creates a store: a wrong --data-dir is STORE_NOT_FOUND.'],
    examples: ['readtrail verify', 'readtrail verify --independent --json', 'readtrail verify --since-checkpoint --every 5m --full-every 24h', 'readtrail verify --acknowledge producer:app-1:42 --reason "host crashed, ticket 17" --by alice'],
  },
  {
    name: 'repair',
    summary: 'with consume stopped: restore deleted signed rows that Kafka\'s messages prove',
    usage: ['readtrail repair [--dry-run] [--chain ID] [--quarantine-unsigned] [--republish-checkpoints] [--json]'],
    flags: ['dry-run', 'chain', 'quarantine-unsigned', 'republish-checkpoints', 'max-candidates', 'json', ...WHERE, ...TRUST],
    details: [
      'After CHAIN_UNTRUSTED, CHECKPOINT_COPY_LOST or deleted signed rows: restores only rows that hash up to the newest signed checkpoint.',
      'exit 0 nothing (left) to repair, 1 something could not be proved (nothing unproved is changed), 3 --dry-run found repairs, 2 error',
    ],
    examples: ['readtrail repair --dry-run', 'readtrail repair --chain readtrail.access/0', 'readtrail repair --republish-checkpoints'],
  },
  {
    name: 'keys',
    summary: 'make the checkpoint signing key, the verifier key or a producer key; list the trusted producers',
    usage: [
      'readtrail keys generate [--out FILE]',
      'readtrail keys generate --verifier',
      'readtrail keys generate --producer SERVICE [--out FILE] [--trusted FILE]',
      'readtrail keys list-producers [--trusted FILE] [--format table|csv|json|ndjson]',
    ],
    first: fixed({
      generate: { summary: 'write a new Ed25519 key pair (private 0600) and print its public key', flags: ['out', 'verifier', 'producer', 'trusted'] },
      'list-producers': { summary: 'the producer keys the chain writer trusts: key id, service, added_at', flags: ['trusted', 'format'] },
    }),
    flags: [],
    details: ['A producer key is added to the trusted-producers file at once (atomically); give its private key to that service only (SDK option signingKey).'],
    examples: [
      'readtrail keys generate',
      'readtrail keys generate --verifier',
      'readtrail keys generate --out /etc/readtrail/checkpoint.key',
      'readtrail keys generate --producer records-api',
      'readtrail keys list-producers --format json',
    ],
  },
  {
    name: 'evidence',
    summary: 'export an offline-verifiable evidence bundle for one event, or check one',
    usage: ['readtrail evidence export --event ID [--out FILE [--force]]', 'readtrail evidence verify FILE [--public-key FILE] [--json]'],
    first: fixed({
      export: { summary: 'write the bundle for one event (never creates a store)', flags: ['event', 'out', 'force', ...WHERE, ...TRUST] },
      verify: { summary: 'check a bundle with no database against a trusted key: exit 0 proved, 1 not, 3 untrusted key', args: ['FILE'], flags: ['public-key', 'json'] },
    }),
    flags: [],
    examples: ['readtrail evidence export --event 0193a6f2-7c1e-7b2a-9d1e-2f0c4a5b6c7d --out evidence.json', 'readtrail evidence verify evidence.json --public-key checkpoint.key.pub'],
  },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash or zsh)',
    usage: ['readtrail completion bash|zsh'],
    first: fixed({ bash: { summary: 'for bash' }, zsh: { summary: 'for zsh' } }, 'shell'),
    flags: [],
    examples: ['source <(readtrail completion bash)', 'readtrail completion zsh > "${fpath[1]}/_readtrail"'],
  },
  {
    name: 'help',
    summary: 'help for one command',
    usage: ['readtrail help [command]'],
    first: { what: 'command', placeholder: '[command]', required: false, choices: () => COMMANDS.map((c) => c.name) },
    flags: [],
    examples: ['readtrail help verify'],
  },
]

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name)
}

/** Every flag a command (and, when given, its subcommand) accepts. */
export function flagsOf(command: CommandSpec, sub?: string): FlagName[] {
  const own = sub === undefined ? [] : (command.first?.subcommands?.[sub]?.flags ?? [])
  const all = sub === undefined && command.first?.subcommands ? Object.values(command.first.subcommands).flatMap((s) => s.flags ?? []) : []
  return [...new Set([...command.flags, ...own, ...all, ...GLOBAL_FLAGS])]
}

/** parseArgs options for every flag of the table. */
export function parseArgsOptions(): Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> {
  return Object.fromEntries(
    Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type, ...('short' in f ? { short: f.short } : {}), ...('multiple' in f ? { multiple: f.multiple } : {}) }]),
  )
}
