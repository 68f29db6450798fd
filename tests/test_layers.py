"""The package's shape: no import cycles (the layers contract itself runs in `make test` as `lint-imports`)."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_through_a_cycle() -> None:
    graph = grimp.build_graph("renyicert", exclude_type_checking_imports=True)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported != "renyicert" and graph.chain_exists(importer=imported, imported=importer):
                cycles.append(graph.find_shortest_chain(importer=imported, imported=importer))
    assert not cycles, f"import cycles: {cycles}"


def test_the_layers_contract_is_configured_and_names_every_subpackage() -> None:
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = " | ".join(config["contracts"][0]["layers"])
    for package in ("renyicert.cli", "renyicert.workflow", "renyicert.checker", "renyicert.smoothing", "renyicert._engine", "renyicert.solver", "renyicert.mechanism"):
        assert package in layers
