"""The command layer sits on top: nothing outside ``nas/cli`` imports ``nas.cli`` (the library
raises ``nas.errors.UsageError`` and never reaches up into the commands)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("nas", "estimators", "objectives", "search_space")
CLI = ROOT / "nas" / "cli"


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names (at any depth: lazy imports count)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from nas import cli` names the package too.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _is_cli(module: str) -> bool:
    return module == "nas.cli" or module.startswith("nas.cli.")


def test_the_library_never_imports_the_command_layer():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(CLI):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            offenders += [f"{path.relative_to(ROOT)}:{line}: {module}"
                          for line, module in _imported(tree) if _is_cli(module)]
    assert not offenders, "the library imports the command layer:\n" + "\n".join(offenders)


def test_the_check_sees_an_offender():
    # The walk must catch lazy imports and `from nas import cli`, or it proves nothing.
    tree = ast.parse("def f():\n    from nas import cli\n    import nas.cli.app\n")
    assert [m for _, m in _imported(tree) if _is_cli(m)] == ["nas.cli", "nas.cli.app"]
    assert not _is_cli("nas.client")
