// Copies the released Avro schemas next to the compiled code: the consumer
// resolves writer schemas by fingerprint from every file in schemas/avro.
import { cpSync } from 'node:fs'
cpSync('schemas/avro', 'dist/schemas/avro', { recursive: true })
