"""The Kafka workers: ingest (touchpoints), the relay, the views worker and the dead letters."""
