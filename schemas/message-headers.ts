/**
 * Kafka headers readtrail's producers and chain writer agree on.
 *
 * REPLAY_HEADER marks an event sent from a producer's outbox. Such an event
 * may already have reached the broker directly (its acknowledgement lost, or
 * the process killed before it marked the outbox), so the chain writer
 * stores it only if its chain does not hold the event id yet.
 */
export const REPLAY_HEADER = 'readtrail-replay'
