"""SQL by table domain: every statement uses bound parameters, every write is one short transaction."""
