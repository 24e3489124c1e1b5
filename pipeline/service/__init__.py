"""Application services: intake, handlers, sweep, relay, casework, reference data and users."""
