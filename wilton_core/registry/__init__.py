"""Model registry: discovery, tests with persisted status, routing preview (seed 002)."""
