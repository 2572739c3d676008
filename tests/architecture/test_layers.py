"""The package's shape: data flows one way (DESIGN.md), so imports run only down the layers
and no module imports itself back through others."""

import ast
from pathlib import Path

import ragortune

PACKAGE = Path(ragortune.__file__).parent

# Each row may import from its own row and the rows above it, never from a row below.
LAYERS = [
    {"ragortune", "errors", "io", "config", "questions", "judge"},
    {"documents"},
    {"embed", "embed_onnx"},
    {"store"},
    {"kb"},
    {"retrieve"},
    {"models"},
    {"generate"},
    {"rag"},
    {"tune"},
    {"evaluate"},
    {"cost"},
    {"decide"},
    {"compare", "report"},
    {"server", "cli"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every ragortune module this file imports, at any depth (function-level imports too)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ragortune"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("ragortune"):
                continue
            for alias in node.names:  # `from ragortune import rag` imports a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _exists(candidate) else base)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (
        PACKAGE.parent / rel / "__init__.py").is_file()


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "ragortune"
    for index, row in enumerate(LAYERS):
        if top in row:
            return index
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS (and DESIGN.md)")


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        graph[module] = {m for m in _imports(path, module) if m != module}
    return graph


def test_imports_never_reach_a_later_stage():
    upward = [f"{module} -> {target}" for module, targets in _graph().items()
              for target in targets if _layer(target) > _layer(module)]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle worth reporting.
    edges = {m: {t for t in ts if t in graph and not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []
