"""Adapters: the store, delivery channels and other side effects behind ports."""
