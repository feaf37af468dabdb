"""The clinic's aggregates, their events and rules: pure, no I/O."""
