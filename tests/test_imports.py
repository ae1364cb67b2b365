"""The imports of the tree, read from the sources (nothing is imported): no
import circle in conll_ner/, scripts/ or benchmarks/ (the measuring
harness), and the product (conll_ner/, scripts/, tests/) never imports the
harness nor puts it on the import path; the harness depends on the product
as any user code does."""

import ast
import re
from pathlib import Path
from typing import Dict, List, Set

from conftest import PROJECT_DIR

# each tree and how its modules are named when imported: conll_ner as the
# installed package, scripts/ and benchmarks/ from their own folder (the
# folder of the script that runs)
TREES = {"conll_ner": "conll_ner", "scripts": "", "benchmarks": ""}


def modules_of(tree: str) -> Dict[str, Path]:
    """Module name -> file of one tree (tests below it left out)."""
    root = PROJECT_DIR / tree
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if {"tests", "work"} & set(parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(p for p in (TREES[tree], *parts) if p)] = path
    return found


def imported_names(path: Path, module: str) -> List[str]:
    """Every module name an import of this file may load: `import a.b` and
    `from a import b` load a, a.b (b may be a module); relative imports are
    resolved against the file's package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            names += [".".join(parts[: i + 1]) for i in range(len(parts))]
    return names


def import_graph(tree: str) -> Dict[str, Set[str]]:
    """Module -> the modules of the same tree (or conll_ner) it imports."""
    modules = modules_of(tree)
    known = set(modules) | set(modules_of("conll_ner"))
    return {
        name: {target for target in imported_names(path, name) if target in known and target != name}
        for name, path in modules.items()
    }


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The import circles of a graph: one path for each strongly connected
    part with more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_in_any_tree():
    for tree in TREES:
        graph = import_graph(tree)
        assert graph, tree
        assert cycles(graph) == [], tree


def test_the_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_product_never_imports_the_harness():
    harness = set(modules_of("benchmarks"))
    product = [path for folder in ("conll_ner", "scripts", "tests") for path in (PROJECT_DIR / folder).rglob("*.py")]
    assert harness and product
    for path in product:
        source = path.read_text(encoding="utf8")
        # no product file puts the harness on the import path
        assert not re.search(r"sys\.path\.(insert|append)\([^)]*benchmarks", source), path
        imported = {name.split(".")[0] for name in imported_names(path, path.stem)}
        assert not imported & {name.split(".")[0] for name in harness}, (path, imported & harness)
