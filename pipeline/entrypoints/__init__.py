"""Entry points: the HTTP app and the command line. Thin: they decode, authorise and hand over."""
