#!/usr/bin/env node
// Health check of `readtrail consume` (docker-compose.yml): exits 0 when the
// chain writer is a member of its consumer group, 1 otherwise. It reads the
// same environment as consume (loadAppConfig), so it asks the broker and
// group the writer was configured with. A writer that crashes and restarts
// never stays in its group, so a restart loop shows as unhealthy.
// Needs the build (dist/), as in the image.
import { Kafka, logLevel } from 'kafkajs'
import { loadAppConfig } from '../dist/cli/config.js'

const config = loadAppConfig(process.env)
const kafka = new Kafka({ clientId: 'readtrail-health', brokers: [...config.kafka.brokers], connectionTimeout: 5000, logLevel: logLevel.NOTHING, retry: { retries: 1 } })
const admin = kafka.admin()
let healthy = false
try {
  await admin.connect()
  const { groups } = await admin.describeGroups([config.groupId])
  const group = groups[0]
  healthy = group !== undefined && group.state === 'Stable' && group.members.length > 0
  console.log(`consumer group ${config.groupId}: ${group?.state ?? 'unknown'}, ${group?.members.length ?? 0} member(s)`)
} catch (err) {
  console.log(`consumer group ${config.groupId}: cannot ask the broker (${err instanceof Error ? err.message : String(err)})`)
} finally {
  await admin.disconnect().catch(() => {})
}
process.exit(healthy ? 0 : 1)
