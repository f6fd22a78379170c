"""The layout rules of docs/architecture.md, checked on the source itself.

- The web and worker processes never import the development tools (costwatch/devtools).
- No import cycle between product modules, counting imports inside functions.
- No product module grows past what can be read at once (about 400 lines).
- Nothing cites a document that is not in the repository.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["costwatch", "ingest", "budgets"]
CLIENT = ROOT / "costwatch_client" / "src"
MAX_LINES = 400


def product_files():
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path
    yield from sorted((CLIENT / "costwatch_client").rglob("*.py"))


def module_name(path: Path) -> str:
    base = CLIENT if CLIENT in path.parents else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str], name: str | None = None) -> set[str]:
    """Product modules that `path` imports anywhere in its body (top level or inside functions)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in product_files()}
    known = set(paths)
    return {name: imported_modules(path, known) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    module = tmp_path / "mod.py"
    module.write_text("def later():\n    from ingest import tasks\n")
    known = {"ingest", "ingest.tasks", "ingest.mod"}
    assert imported_modules(module, known, name="ingest.mod") == {"ingest.tasks"}
    module.write_text("from . import tasks, helper_function\nfrom .missing import x\n")
    assert imported_modules(module, known, name="ingest.mod") == {"ingest.tasks", "ingest"}


def test_product_modules_import_no_cycle():
    assert cycles(import_graph()) == []


def test_no_product_module_is_longer_than_one_read():
    long = {str(path.relative_to(ROOT)): lines for path in product_files()
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these into a package of one module per concern (docs/architecture.md): {long}"


def test_nothing_cites_a_document_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        if not name.endswith((".py", ".md", ".html", ".txt", ".js", ".ts", ".toml")) or name == "tests/test_structure.py":
            continue
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1):
            words = line.replace("(", " ").replace(")", " ").replace('"', " ").split()
            if "SPEC" in words or any(word.startswith("SPEC:") for word in words):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == [], "cite docs/ instead:\n" + "\n".join(offenders)


@pytest.mark.django_db
def test_web_and_worker_processes_never_import_the_development_tools():
    probe = (
        "import sys, django\n"
        "django.setup()\n"
        "import costwatch.wsgi\n"  # imports every view, as gunicorn's workers do
        "from costwatch.celery import app\n"
        "app.loader.import_default_modules()\n"  # every tasks module, as a worker does
        "print(sorted(m for m in sys.modules if m.startswith('costwatch.devtools')))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "costwatch.settings_test")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
