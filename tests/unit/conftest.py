"""Fixtures of the handler tests against the store port's fake: the test world loaded into a ``MemoryStore`` at
term-time evening, and the handlers' context from the rules as shipped."""

from __future__ import annotations

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.service.handlers import Context
from pipeline.settings import Settings
from tests.support.store_ports import loaded_memory_store
from tests.support.world import TERM_EVENING


@pytest.fixture
def store() -> MemoryStore:
    return loaded_memory_store(TERM_EVENING)


@pytest.fixture
def ctx() -> Context:
    return Context.build(Settings().rules)
