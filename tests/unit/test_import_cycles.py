"""No import cycles: a module never imports (directly or through others) a module that imports it.

The import graph comes from grimp, which reads every import statement, including those inside functions (an
import moved into a function hides a cycle from the interpreter, not from a reader). Imports under
``if TYPE_CHECKING:`` are left out: they never run.

``CHECKED`` lists the packages whose modules may be in no cycle: every package of the project.
``NOT_YET_CHECKED`` would name one still exempt (none is), so that a new package is checked from the start.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import grimp
import pytest

PROJECT_PACKAGES = ("pipeline", "consumers", "producers")
CHECKED = (
    "consumers",
    "producers",
    "pipeline.adapters",
    "pipeline.bootstrap",
    "pipeline.codec",
    "pipeline.domain",
    "pipeline.ports",
    "pipeline.entrypoints",
    "pipeline.json_text",
    "pipeline.runtimes",
    "pipeline.private_logs",
    "pipeline.schema_compat",
    "pipeline.service",
    "pipeline.settings",
    "pipeline.web",
)
NOT_YET_CHECKED: tuple[str, ...] = ()


def cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """One shortest cycle through each import that closes one (each cycle reported once)."""
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                found.setdefault(frozenset(back), (importer, *back))
    return list(found.values())


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def project_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PROJECT_PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def test_no_import_cycle_touches_a_checked_package() -> None:
    found = [cycle for cycle in cycles(project_graph()) if any(within(m, CHECKED) for m in cycle)]
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_every_top_level_module_is_checked_or_named_as_not_yet() -> None:
    graph = project_graph()
    top_level = {m for m in graph.modules if m.count(".") <= 1 and m not in PROJECT_PACKAGES}
    unlisted = sorted(m for m in top_level if not within(m, CHECKED + NOT_YET_CHECKED))
    assert unlisted == []


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "cyclic_example"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from cyclic_example import second\n")
    (package / "second.py").write_text(textwrap.dedent("""
        import typing

        if typing.TYPE_CHECKING:
            from cyclic_example import third


        def late() -> None:
            from cyclic_example import first
    """))
    (package / "third.py").write_text("from cyclic_example import second\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_example", exclude_type_checking_imports=True, cache_dir=None)
    assert cycles(graph) == [("cyclic_example.first", "cyclic_example.second", "cyclic_example.first")]
