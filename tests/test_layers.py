"""The package's shape: no import cycles (the layers contract itself runs in `make test` as `lint-imports`)."""

from __future__ import annotations

import ast
from pathlib import Path

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
    for package in (
        "renyicert.cli",
        "renyicert.workflow",
        "renyicert.checker",
        "renyicert.smoothing",
        "renyicert._engine",
        "renyicert.solver",
        "renyicert.mechanism",
    ):
        assert package in layers


# ------------------------------------------------------------------------- import rules import-linter cannot see
SOURCE = Path(__file__).resolve().parents[1] / "src" / "renyicert"
#: What a command module of the CLI may import from renyicert: the CLI's own arguments, and the public faces.
CLI_MAY_IMPORT = {"renyicert", "renyicert.cli.arguments", "renyicert.workflow", "renyicert.checker", "renyicert.radii"}
CLI_COMMAND_MODULES = ("mechanisms", "train", "certify", "report", "jobs")


def _imports(path: Path, package: str) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, names)`` of every ``from ... import`` and ``import`` in ``path`` (``package``: its package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            module = (
                ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else node.module
            )
            found.append((node.lineno, module or "", [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
    return found


def _module_of(path: Path) -> tuple[str, str]:
    """``(module, its package)`` of a source file."""
    parts = ["renyicert", *path.relative_to(SOURCE).with_suffix("").parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def test_no_module_imports_an_underscore_name_from_another_module() -> None:
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        _, package = _module_of(path)
        for line, module, names in _imports(path, package):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{path.relative_to(SOURCE)}:{line}: from {module} import {', '.join(private)}")
    assert not offenders, "underscore names imported across modules:\n" + "\n".join(offenders)


def test_a_cli_command_module_imports_only_the_arguments_and_the_public_faces() -> None:
    offenders = []
    for name in CLI_COMMAND_MODULES:
        path = SOURCE / "cli" / f"{name}.py"
        for line, module, names in _imports(path, "renyicert.cli"):
            targets = (
                [f"{module}.{n}" for n in names] if module == "renyicert.workflow" and name == "jobs" else [module]
            )
            allowed = CLI_MAY_IMPORT | ({"renyicert.workflow.jobs"} if name == "jobs" else set())
            for target in targets:
                if target.startswith("renyicert") and target not in allowed:
                    offenders.append(f"cli/{name}.py:{line}: {target}")
    assert not offenders, "CLI command modules may import only cli/arguments and the public faces:\n" + "\n".join(
        offenders
    )


def test_the_import_rules_catch_a_wrong_import(tmp_path: Path) -> None:
    # The rules above read the source: a command module importing a workflow module directly is one they refuse.
    wrong = tmp_path / "certify.py"
    wrong.write_text("from ..workflow.certify import certify_dataset\nfrom ..workflow import _private\n")
    lines = _imports(wrong, "renyicert.cli")
    assert [module for _, module, _ in lines] == ["renyicert.workflow.certify", "renyicert.workflow"]
    assert [n for _, _, names in lines for n in names if n.startswith("_")] == ["_private"]


#: Functions allowed over MAX_FUNCTION_LINES, "path:name": a Triton kernel is one @triton.jit function, the loop
#: the hardware runs (as the C++ kernel is one file), defined inside a builder so that TRITON_INTERPRET is read at
#: first use; the builder holds the kernel's lines too.
LONG_FUNCTIONS = {
    "_engine/sampler.py:_triton_kernel",  # builds noisy_rows_kernel
    "_engine/sampler.py:noisy_rows_kernel",  # Philox draws, the transform, the batch write
    "_engine/lattice_sampler.py:_triton_kernel",  # builds the lattice kernel: draws, the thresholds' guide table
}
#: The longest a function's code may be, not counting its docstring (numpy docstrings with an example run long).
MAX_FUNCTION_LINES = 60


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return lines


def test_no_function_is_over_60_lines_of_code_but_the_kernels() -> None:
    long = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(SOURCE).as_posix()}:{node.name}"] = _code_lines(node)
    assert set(long) == LONG_FUNCTIONS, f"functions over {MAX_FUNCTION_LINES} lines of code: {long}"
