"""The engine's hands on the outside world: the event store, logs, metrics."""
