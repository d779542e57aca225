"""The synthetic history behind the demo, the bench and the tests, and its bundled sample."""
