/**
 * Every error code readtrail can raise, with the sentence the documentation
 * shows for it. Callers branch on `code`, never on message text; a test checks
 * that each code here is documented in docs/errors.md.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'A configuration value (environment, flag or option) is missing or out of range; the message names every offending key.',
  INPUT_INVALID: 'An SDK call received a read that does not match the schema; the message names every invalid field.',
  SCHEMA_FINGERPRINT_UNKNOWN: 'A message was written with an Avro schema whose fingerprint is not among the released versions in schemas/avro.',
  MESSAGE_MALFORMED: 'A message is not Avro single-object encoding, or its body does not decode with its writer schema.',
  EVENT_INVALID: 'A decoded event breaks a rule the Avro schema cannot express (for example a part index beyond the part count).',
  PRODUCER_CLOSED: 'recordRead was called after close().',
  PUBLISH_FAILED: 'The Kafka broker did not acknowledge an event; the caller must treat the read as unrecorded.',
  READ_TOO_LARGE: 'A read cannot be recorded as it is: a single record id is larger than a Kafka message, or a hooked query returned more rows of a sensitive table than the hook option maxRowsPerRead (that read is refused and returns no rows).',
  KAFKA_UNAVAILABLE: 'The Kafka broker could not be reached or refused an administrative request.',
  KAFKA_TOPIC_MISSING: 'The Kafka topic readtrail was asked to use does not exist on the broker; the message names the command that creates it (readtrail consume, or kafka-topics).',
  STORE_UNAVAILABLE: 'ClickHouse (server or embedded chDB) could not be reached or failed a request.',
  STORE_REJECTED: 'ClickHouse refused a request because of the data or SQL sent (its error type is in details.clickhouse_error_type): the same request fails again, so it is not retried.',
  STORE_LOCKED: 'The embedded store is owned by another readtrail process; the message names its pid and command.',
  STORE_ENGINE_MISSING: 'The embedded ClickHouse engine is needed (no server URL is set) but the optional chdb package is not installed; the message names `npm install chdb`.',
  STORE_SCHEMA_MISMATCH: 'The access_log table in ClickHouse does not have the columns this version of readtrail writes.',
  STORE_NOT_FOUND: 'A command that only reads the store (query, report, verify, evidence export, repair) found none where it was pointed: no embedded store at the data directory, or no access_log table in the database. The message names the path; nothing was created there.',
  ROW_REJECTED: 'ClickHouse refused to store an event that passed validation (its reason is in the message); the event was dead-lettered so its partition keeps moving.',
  QUERY_UNKNOWN: 'No saved query has that name.',
  QUERY_PARAM_INVALID: 'A saved-query parameter is missing or invalid; nothing was sent to ClickHouse.',
  QUERY_TABLE_UNKNOWN: 'A saved-query table (or database) parameter matches no table with recorded reads, in any spelling; the message names the closest recorded tables.',
  QUERY_SUBJECTS_UNCONFIGURED: 'A query about data subjects ran without READTRAIL_SUBJECT_KEYS, so no table says where its subject is.',
  VERIFY_FAILED: 'Verification could not run to completion (the store failed mid-way); this is not a finding about the data.',
  CHECKPOINT_KEY_MISSING: 'No checkpoint signing key (or public key) at the configured path: the chain writer refuses to run unsigned, verify refuses to run without the key that checks signatures.',
  CHECKPOINT_KEY_INVALID: 'A checkpoint key file exists but is not a readable Ed25519 key of the expected kind (private PKCS#8 PEM for signing, public SPKI PEM for verifying), or its permissions let others read it.',
  DIRECTORY_NOT_PRIVATE: 'A directory readtrail keeps its state in (the embedded store, the checkpoint log, keys, the verify state, an outbox) already exists and group or others can read, write or enter it; readtrail refuses to use it until it is made private, and the message names the chmod that does it.',
  CHECKPOINT_LOG_UNAVAILABLE: 'The append-only checkpoint log could not be opened, written or fsync\'d; the chain writer stops rather than continue without durable checkpoints.',
  CHECKPOINT_TOPIC_UNAVAILABLE: 'The Kafka copy of the checkpoints could not be written or read.',
  CHECKPOINT_TOPIC_INVALID: 'The checkpoint topic exists with settings that would let Kafka delete checkpoints (retention or cleanup policy); the message names the settings to change.',
  VERIFY_STATE_INVALID: 'The incremental-verification state file is unreadable or belongs to another database; run a full verify to rebuild it.',
  EVIDENCE_NOT_FOUND: 'No stored event has the id given to evidence export.',
  EVIDENCE_NOT_COVERED: 'No signed checkpoint covers the event yet (it is newer than the newest checkpoint of its chain); try again after the next checkpoint.',
  EVIDENCE_CHAIN_BROKEN: 'The stored rows between the event and its checkpoint do not link up to the signed hash: the store is damaged, and no bundle was written (run readtrail verify).',
  EVIDENCE_INVALID: 'An evidence bundle file is not valid JSON of the expected shape; nothing was proved.',
  CONTEXT_INVALID: 'runWithAuditContext (or a request adapter) received a context that does not match the schema; the message names every invalid field and the function was not run.',
  CONTEXT_MISSING: 'A hooked read of a sensitive table ran outside any audit context while the hooks are in strict mode; the read was refused and returned no rows.',
  HOOK_TABLE_UNKNOWN: 'A table named in the hook configuration does not exist in the database the hook was attached to (or has no primary key and none was configured).',
  RECORD_IDS_INCOMPLETE: 'In strict mode, a query returned rows of a sensitive table without its primary key columns, so the records read cannot be named; the read was refused.',
  AUDIT_UNAVAILABLE: 'A read of a fail-closed table was refused because its audit event could not be made durable (broker acknowledgement or outbox fsync) within the deadline; the caller received no rows.',
  OUTBOX_FULL: 'The local outbox reached its size bound while Kafka was unavailable; the event was not written (fail-closed reads are refused, fail-open reads are counted and logged as unrecorded).',
  OUTBOX_UNAVAILABLE: 'The local outbox directory could not be created, written or fsync\'d.',
  OUTBOX_LOCKED: 'The outbox directory is owned by another live process (the message names its pid); each process needs its own outbox directory.',
  OUTBOX_CORRUPT: 'An outbox segment holds a record whose checksum or framing is wrong before its end; the segment is set aside, never replayed or deleted, and the events in it are reported as unrecorded.',
  CHAIN_UNTRUSTED: 'The chain writer found stored rows after a chain\'s newest signed checkpoint that the Kafka log does not vouch for (no message at their offset, a different message, an offset beyond the partition\'s end, or a checkpointed row missing or changed); it stopped and signed nothing over them.',
  CHECKPOINT_COPY_LOST: 'The Kafka copy of the checkpoints lost checkpoints the file holds (the topic was deleted and recreated, or records were deleted from it); the chain writer refuses to sign over a history an attacker may have wound back.',
  OWNER_UNTRUSTED: 'The process answering on the embedded store\'s owner socket could not prove it is the readtrail owner (its challenge signature or its pid did not check out); nothing it said was used.',
  EVIDENCE_KEY_UNTRUSTED: 'An evidence bundle was checked only against the public key it carries itself; without a trusted key (--public-key or READTRAIL_CHECKPOINT_PUBLIC_KEY) it proves nothing.',
  VERIFY_STATE_UNTRUSTED: 'The verify state file is not signed by the verifier key, or its signature does not match: it was edited or forged, and no answer stands on it.',
  REPAIR_WRITER_RUNNING: 'readtrail repair found the chain writer running (it owns the embedded store, or its consumer group has members): repair changes what the writer resumes from, so it refuses to run beside it.',
  REPAIR_CHAIN_BROKEN: 'A signed row is missing, but the stored rows between it and the newest checkpoint do not chain up to that checkpoint (a row edited, rewritten or stored twice, or a gap above it that could not be proved): nothing anchors a rebuild, so nothing was inserted.',
  REPAIR_MESSAGES_MISSING: 'The Kafka messages between the rows around a gap no longer hold enough valid events to rebuild the missing signed rows (trimmed from Kafka, dead-lettered, or never there); nothing was inserted.',
  REPAIR_GAP_UNPROVED: 'Rows rebuilt from the Kafka messages around a gap do not hash to what the next stored row or the checkpoint commits to, under any ingested_at the search tried: the messages or a neighbouring row changed; nothing was inserted.',
  REPAIR_GAP_AMBIGUOUS: 'More valid Kafka messages lie around a gap than rows are missing, and the ways to choose among them exceed the bound; nothing was inserted.',
  REPAIR_SEARCH_EXHAUSTED: 'The search for the missing rows\' ingested_at tried the configured maximum of candidates (--max-candidates) without a proof; nothing was inserted.',
  REPAIR_CHECKPOINT_LOG_INVALID: 'readtrail repair --republish-checkpoints refused: a line of the checkpoint file is unreadable, not signed by the checkpoint key, or breaks its chain of checkpoints.',
  REPAIR_CHECKPOINTS_ROLLED_BACK: 'readtrail repair --republish-checkpoints refused: the checkpoint file is behind the highest checkpoint the signed verify state (or what is left of the Kafka copy) recorded for a chain, which is what a rolled-back history looks like.',
  OUTPUT_EXISTS: 'An output path (report --out, evidence export --out) already names a file, directory or symlink; readtrail never overwrites it nor writes through a link, and checked before any query ran.',
  OUTPUT_UNWRITABLE: 'An output file could not be created or written (read-only file system, missing directory, no permission; the errno is in details.errno); checked before any query ran, and no partial file was left.',
  OWNER_BUSY: 'The process owning the embedded store is already answering as many requests (or holding as many request bytes) as it allows; nothing was done, and the asker may try again shortly.',
  OWNER_REQUEST_TOO_LARGE: 'A request to the store\'s owner is larger than the owner accepts in one request; it was not sent.',
  USAGE: 'The command line was not understood.',
} as const satisfies Record<string, string>

export type ErrorCode = keyof typeof ERROR_CODES

/**
 * The codes whose operation may succeed if tried again unchanged: a service
 * away or busy, a lock held, a checkpoint not yet made. Decided here per
 * code, never at a throw site, so `retriable` means the same everywhere and
 * survives the trip across a process boundary as the code alone.
 */
export const RETRIABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PUBLISH_FAILED',
  'KAFKA_UNAVAILABLE',
  'KAFKA_TOPIC_MISSING',
  'STORE_UNAVAILABLE',
  'STORE_LOCKED',
  'VERIFY_FAILED',
  'CHECKPOINT_LOG_UNAVAILABLE',
  'CHECKPOINT_TOPIC_UNAVAILABLE',
  'EVIDENCE_NOT_COVERED',
  'AUDIT_UNAVAILABLE',
  'OUTBOX_FULL',
  'OUTBOX_UNAVAILABLE',
  'OUTBOX_LOCKED',
  'OWNER_BUSY',
])
