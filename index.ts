// `import … from 'readtrail'`: the application SDK (the same surface as
// 'readtrail/producers'), plus every error class readtrail raises, so an
// application can branch on any of them without importing the engine:
// nothing here loads ClickHouse or chDB.
export {
  AuditContextError,
  AuditUnavailableError,
  auditContextMiddleware,
  bindToAuditContext,
  ConfigError,
  createAuditProducer,
  createReadRecorder,
  currentAuditContext,
  HookError,
  InputError,
  instrumentMysql2,
  instrumentPg,
  isReadtrailError,
  OutboxError,
  ProducerError,
  ReadtrailError,
  registerAuditContext,
  runWithAuditContext,
  runWithoutAuditContext,
  withAuditContext,
} from './producers/index.js'
export type {
  AuditContext,
  AuditContextHookTarget,
  AuditContextInput,
  AuditHookConfig,
  AuditHookConfigInput,
  AuditPolicy,
  AuditProducer,
  AuditProducerConfig,
  AuditProducerConfigInput,
  AuditProducerOptions,
  DeliveryStats,
  Durability,
  ErrorCode,
  ExpressAuditContextOptions,
  FastifyAuditContextOptions,
  FieldIssue,
  HttpAuditContextOptions,
  HttpHandler,
  InstrumentMysql2Options,
  Mysql2Target,
  ReadInput,
  ReadRecorder,
  ReadRecorderOptions,
  ReadRecorderStats,
  ReadtrailErrorOptions,
  RecordedRead,
  RequestContextOptions,
  SensitiveTable,
  SqlDialect,
  TableRead,
} from './producers/index.js'
export { ERROR_CODES } from './common/error-codes.js'
export { SchemaError } from './schemas/errors.js'
export { IngestError } from './consumers/errors.js'
export { StoreError } from './store/errors.js'
export { QueryError } from './queries/errors.js'
export { VerificationError } from './integrity/errors.js'
export { CheckpointError } from './checkpoints/errors.js'
export { EvidenceError } from './evidence/errors.js'
export type { EvidenceErrorCode } from './evidence/errors.js'
