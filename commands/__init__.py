"""Commands (imperative, frozen) and their handlers: load aggregates, decide, save."""
