"""Read models: projectors that write flat tables from the event log, and the queries that read them."""
