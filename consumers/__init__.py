"""Kafka loops that translate messages into application calls (the pipeline issue)."""
