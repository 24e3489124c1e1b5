"""Event producers: `safeguard produce`, and the demo hospital that emits attendances in `make run`."""
