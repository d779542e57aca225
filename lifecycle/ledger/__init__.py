"""The application service over the event store: record facts, read leads, import, report."""
