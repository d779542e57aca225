"""Local tooling: the synthetic history, its bundled sample, and the bundled broker.

Used by the demo, `lifecycle broker`, the bench and the tests; no worker depends on it.
"""
