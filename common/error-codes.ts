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
  STORE_UNAVAILABLE: 'ClickHouse (server or embedded chDB) could not be reached or failed a request.',
  STORE_LOCKED: 'The embedded store is owned by another readtrail process; the message names its pid and command.',
  STORE_SCHEMA_MISMATCH: 'The access_log table in ClickHouse does not have the columns this version of readtrail writes.',
  ROW_REJECTED: 'ClickHouse refused to store an event that passed validation (its reason is in the message); the event was dead-lettered so its partition keeps moving.',
  QUERY_UNKNOWN: 'No saved query has that name.',
  QUERY_PARAM_INVALID: 'A saved-query parameter is missing or invalid; nothing was sent to ClickHouse.',
  QUERY_SUBJECTS_UNCONFIGURED: 'A query about data subjects ran without READTRAIL_SUBJECT_KEYS, so no table says where its subject is.',
  VERIFY_FAILED: 'Verification could not run to completion (the store failed mid-way); this is not a finding about the data.',
  CHECKPOINT_KEY_MISSING: 'No checkpoint signing key (or public key) at the configured path: the chain writer refuses to run unsigned, verify refuses to run without the key that checks signatures.',
  CHECKPOINT_KEY_INVALID: 'A checkpoint key file exists but is not a readable Ed25519 key of the expected kind (private PKCS#8 PEM for signing, public SPKI PEM for verifying), or its permissions let others read it.',
  CHECKPOINT_LOG_UNAVAILABLE: 'The append-only checkpoint log could not be opened, written or fsync\'d; the chain writer stops rather than continue without durable checkpoints.',
  CHECKPOINT_TOPIC_UNAVAILABLE: 'The Kafka copy of the checkpoints could not be written or read.',
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
  OWNER_UNTRUSTED: 'The process answering on the embedded store\'s owner socket could not prove it is the readtrail owner (its challenge signature or its pid did not check out); nothing it said was used.',
  EVIDENCE_KEY_UNTRUSTED: 'An evidence bundle was checked only against the public key it carries itself; without a trusted key (--public-key or READTRAIL_CHECKPOINT_PUBLIC_KEY) it proves nothing.',
  VERIFY_STATE_UNTRUSTED: 'The verify state file is not signed by the verifier key, or its signature does not match: it was edited or forged, and no answer stands on it.',
  USAGE: 'The command line was not understood.',
} as const satisfies Record<string, string>

export type ErrorCode = keyof typeof ERROR_CODES
