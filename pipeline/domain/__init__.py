"""The safeguarding rules: pure functions of (event, state, now). No I/O, no clock, no settings lookups."""
