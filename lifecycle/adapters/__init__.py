"""The engine's hands on the outside world: event store, bundled broker, logs, metrics."""
