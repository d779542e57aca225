"""The read-only HTTP API, the web dashboard and the ops endpoints (``lifecycle serve``)."""
