"""The project's import graph, read from the source (ast; nothing is imported):
no import cycle among its modules, and no module imports another module's private
(`_name`) names. Two graphs: the imports run at import time (none may cycle), and
all imports, those inside functions and under `if TYPE_CHECKING:` too (none may
cycle either). And `clients/` is the HTTP-only library: it imports only itself and the
wire format (`rationalyst/`), never the server, the supervisor, making or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The repository's folders and the import names they install under (pyproject.toml).
PACKAGES = {
    "rationalyst": "rationalyst",
    "supervisor": "rationalyst.supervisor",
    "server": "rationalyst.server",
    "clients": "rationalyst.clients",
    "making": "rationalyst.making",
    "cli": "rationalyst.cli",
}


def modules() -> dict[str, Path]:
    found = {}
    for folder, name in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((name, *parts))] = path
    return found


MODULES = modules()


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(module: str):
    """(imported module, names taken from it, at import time?) of each import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def walk(body, top: bool):
        for node in body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    yield a.name, [], top
            elif isinstance(node, ast.ImportFrom):
                yield resolve(module, node), [a.name for a in node.names], top
            elif isinstance(node, ast.If):
                yield from walk(node.body, top and not type_checking(node))
                yield from walk(node.orelse, top)
            elif isinstance(node, (ast.Try,)):
                for part in (
                    node.body,
                    *(h.body for h in node.handlers),
                    node.orelse,
                    node.finalbody,
                ):
                    yield from walk(part, top)
            elif isinstance(node, (ast.With, ast.For, ast.While)):
                yield from walk(node.body, top)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from walk(node.body, top and isinstance(node, ast.ClassDef))

    yield from walk(tree.body, True)


def project(name: str) -> str | None:
    """The project module `name` is, or is in (the longest match)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def graph(deferred: bool = False) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, names, top in imports(m):
            if not (top or deferred) or project(target) is None:
                continue
            # `from pkg import module` imports the module too.
            for n in names or [""]:
                sub = project(f"{target}.{n}") if n else None
                dep = sub if sub and sub != project(target) else project(target)
                # Importing a.b.c runs packages a and a.b first; a module's own
                # packages have started before it runs, so they are no edge of it.
                chain = dep.split(".")
                for i in range(2, len(chain) + 1):
                    p = ".".join(chain[:i])
                    if p in MODULES and p != m and not m.startswith(p + "."):
                        edges[m].add(p)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, f"import cycles among the project's modules: {found}"


def test_no_cycle_through_deferred_imports():
    found = cycles(graph(deferred=True))
    assert not found, f"cycles through in-function imports: {found}"


# What clients/ may import of the project: itself and the wire format.
HTTP_ONLY = ("rationalyst.clients", "rationalyst.protocol", "rationalyst.answer_text")


def test_clients_import_only_the_wire_format():
    edges = graph(deferred=True)
    bad = [
        f"{m} imports {dep}"
        for m in sorted(edges)
        if m.startswith("rationalyst.clients")
        for dep in sorted(edges[m])
        if not (dep == "rationalyst" or dep.startswith(HTTP_ONLY))
    ]
    assert not bad, "\n".join(bad)
    assert edges["rationalyst.clients.client"], "the check reads clients/"


def test_no_module_imports_another_modules_private_names():
    bad = []
    for m in MODULES:
        for target, names, _ in imports(m):
            src = project(target)
            if src is None or src == m:
                continue
            for n in names:
                if (
                    n.startswith("_")
                    and not n.startswith("__")
                    and project(f"{target}.{n}") in (None, src)
                ):
                    bad.append(f"{m} imports {n} from {src}")
    assert not bad, "\n".join(bad)


def test_no_module_reaches_into_another_modules_privates():
    """`module._name` where `module` is a project module the file imported."""
    bad = []
    for m in MODULES:
        tree = ast.parse(MODULES[m].read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(m, node)
                for a in node.names:
                    mod = project(f"{target}.{a.name}")
                    if mod == f"{target}.{a.name}" or (mod and mod.endswith("." + a.name)):
                        aliases[a.asname or a.name] = mod
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname and project(a.name) == a.name:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases[node.value.id] != m
            ):
                bad.append(f"{m} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_checks_see_the_project():
    # Guards the test itself: it reads every package, and finds a known edge.
    assert {
        "rationalyst.protocol",
        "rationalyst.supervisor.loop",
        "rationalyst.supervisor.strategies",
        "rationalyst.supervisor.strategies.base",
        "rationalyst.server.app",
        "rationalyst.making.rank",
    } <= set(MODULES)
    edges = graph()
    assert "rationalyst.supervisor.strategies" in edges["rationalyst.supervisor.loop"]
    assert (
        "rationalyst.supervisor.strategies.base" in edges["rationalyst.supervisor.strategies.judge"]
    )
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
