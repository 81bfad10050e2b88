"""The package's shape: subpackages along the data flow, imports pointing down it, no cycles,
small modules and a small root API (all read from the source with :mod:`ast`, nothing imported)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "semcathode"
#: The data flow, upstream first: a module may import its own subpackage and those before it.
FLOW = ("config", "io", "data", "morphology", "models", "metrics", "study", "explain", "report", "pipeline")
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute ``semcathode`` modules imported anywhere in a file (top level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "semcathode"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "semcathode":
                continue
            # ``from . import x`` / ``from .pkg import mod`` may name modules: count those too
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if (PKG.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PKG.parent / sub.replace(".", "/")).is_dir() else target)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PKG.rglob("*.py")}


def _stage(module: str) -> int:
    """Position of a module's subpackage in the flow; root-level private helpers come first."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in FLOW:
        return FLOW.index(parts[1])
    return -1


def test_every_module_lives_in_a_flow_subpackage_or_is_a_private_helper():
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG)
        if len(rel.parts) == 1:
            assert p.name == "__init__.py" or p.name.startswith("_"), f"{rel}: put it in a subpackage"
        else:
            assert rel.parts[0] in FLOW, f"{rel}: {rel.parts[0]} is not a step of the flow {FLOW}"


def test_imports_point_down_the_flow():
    bad = []
    for module, targets in _graph().items():
        if module == "semcathode":  # the root re-exports lazily, by name
            continue
        for t in targets:
            if _stage(t) > _stage(module):
                bad.append(f"{module} imports {t} (upstream {FLOW[_stage(module)] if _stage(module) >= 0 else 'root'}"
                           f" -> downstream {FLOW[_stage(t)]})")
    assert not bad, "imports that go up the flow:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = {m: {t for t in ts if t in _graph_nodes()} for m, ts in _graph().items()}
    # a subpackage's __init__ resolves names lazily (strings), so package -> module edges are not imports
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            if len(comp) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def _graph_nodes() -> set[str]:
    return {_module_name(p) for p in PKG.rglob("*.py")}


def test_the_checker_sees_cycles_and_upward_imports(tmp_path, monkeypatch):
    """The two checks above fail on a package that has a cycle and an upward import."""
    fake = tmp_path / "semcathode"
    for rel, text in {
        "__init__.py": "",
        "io/__init__.py": "",
        "io/a.py": "from .b import x\n",
        "io/b.py": "def f():\n    from .a import y\n",
        "report/__init__.py": "",
        "report/r.py": "x = 1\n",
        "data/__init__.py": "",
        "data/d.py": "from ..report.r import x\n",
    }.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    with pytest.raises(AssertionError, match=r"semcathode\.io\.a.*semcathode\.io\.b"):
        test_no_import_cycles()
    with pytest.raises(AssertionError, match=r"semcathode\.data\.d imports semcathode\.report\.r"):
        test_imports_point_down_the_flow()


def test_modules_are_small():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_subpackage_declares_its_public_names():
    for sub in FLOW:
        tree = ast.parse((PKG / sub / "__init__.py").read_text())
        assigned = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        assert {"__all__", "_NAMES"} <= assigned, sub
        assert tree.body and isinstance(tree.body[0], ast.Expr), f"{sub}/__init__.py needs a docstring"


MAX_PUBLIC = 120


def _public_names() -> dict[str, list[str]]:
    """Each subpackage's ``_NAMES`` keys, read from its ``__init__.py`` (nothing imported)."""
    out = {}
    for sub in FLOW:
        tree = ast.parse((PKG / sub / "__init__.py").read_text())
        for n in tree.body:
            if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "_NAMES":
                out[sub] = [k.value for k in n.value.keys]
    return out


def _calls_off_the_public_lists(names: dict[str, list[str]], notebooks: list[Path], others: list[Path]) -> list[str]:
    """``subpackage.name`` of every ``sc.<subpackage>.<name>`` (or ``semcathode.``) in these texts that is
    not on the subpackage's public list. A notebook calls public names only; the README and a
    benchmark may also name where a thing lives (a private module, ``semcathode.models._forward``),
    but any other name they use must be public."""
    import re

    used = {(t in notebooks, m.group(1), m.group(2)) for t in [*notebooks, *others]
            for m in re.finditer(r"\b(?:sc|semcathode)\.(\w+)\.(\w+)\b", t.read_text(encoding="utf-8"))
            if m.group(1) in names and not m.group(2).startswith("__")}
    return sorted(f"{p}.{n}" for nb, p, n in used if n not in names[p] and (nb or not n.startswith("_")))


def test_at_most_120_public_names_outside_the_root_and_every_notebook_call_is_one(tmp_path):
    """The subpackages' public surface is a short list (every implementation module is private),
    and every ``sc.<subpackage>.<name>`` a notebook, the README or a benchmark calls is on it."""
    names = _public_names()
    assert set(names) == set(FLOW)
    total = sum(len(v) for v in names.values())
    assert total <= MAX_PUBLIC, {k: len(v) for k, v in names.items()}
    root = PKG.parent
    others = [root / "README.md", *(root / "benchmarks").glob("*.py")]
    assert _calls_off_the_public_lists(names, [*(root / "notebooks").glob("*.py")], others) == []
    # the checker: a notebook may not reach into a private module; the README may name one
    nb, doc = tmp_path / "01.py", tmp_path / "README.md"
    nb.write_text("sc.models.load_model(p)\nsc.models._forward.predict_tiles(m, x)\nsc.models.nothing\n")
    doc.write_text("`semcathode.models._forward` runs it; `sc.models.not_there`\n")
    assert _calls_off_the_public_lists({"models": ["load_model"]}, [nb], [doc]) == [
        "models._forward", "models.not_there", "models.nothing"]


def _unresolved_references(pkg: Path = PKG) -> list[str]:
    """``file: dotted.name`` for every ``semcathode.<...>`` name in the package's source (docstring
    cross-references, doctest imports) that does not resolve to a module or an attribute."""
    import importlib
    import re

    found = set()
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        refs = {m.group(0) for m in re.finditer(r"\bsemcathode(?:\.\w+)+", text)}
        refs |= {f"{m.group(1)}.{n.strip()}" for m in re.finditer(r"from (semcathode(?:\.\w+)*) import ([\w, ]+)", text)
                 for n in m.group(2).split(",") if n.strip()}
        for ref in refs:
            parts = ref.split(".")
            obj, i = None, len(parts)
            while i > 0:  # the longest importable prefix, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                    break
                except ImportError:
                    i -= 1
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
                if obj is None:
                    found.add(f"{path.relative_to(pkg)}: {ref}")
                    break
    return sorted(found)


def test_every_dotted_reference_in_the_package_resolves(tmp_path):
    """A docstring cross-reference or a doctest import names what is there (a name that leaves a
    subpackage's public list must leave its references too)."""
    assert _unresolved_references() == []
    (tmp_path / "m.py").write_text('"""See :func:`semcathode.io.no_such_thing`."""\n')
    assert _unresolved_references(tmp_path) == ["m.py: semcathode.io.no_such_thing"]




def _functions_taking_runconfig(pkg: Path = PKG) -> set[str]:
    """``subpackage.module.function`` of every function outside ``pipeline/`` and ``config/`` (the
    edges) with a parameter annotated ``RunConfig`` or named ``cfg``."""
    found = set()
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).with_suffix("").parts
        if len(rel) < 2 or rel[0] in ("pipeline", "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                if any(x.arg == "cfg" or (x.annotation is not None and "RunConfig" in ast.unparse(x.annotation))
                       for x in a.posonlyargs + a.args + a.kwonlyargs):
                    found.add(".".join(rel) + "." + node.name)
    return found


def test_the_configuration_stays_at_the_edges(tmp_path):
    """Outside ``pipeline/`` and ``config/`` no function takes a ``RunConfig`` (or a parameter named
    ``cfg``): the edges unpack it into the sections, or the ``StudySettings`` a ``Study`` carries."""
    assert _functions_taking_runconfig() == set()
    # the checker sees an annotation and the conventional name, and leaves the edges alone
    for sub in ("a", "pipeline"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "m.py").write_text("def f(x, c: 'RunConfig'): ...\ndef g(cfg=None): ...\ndef h(x): ...\n")
    assert _functions_taking_runconfig(tmp_path) == {"a.m.f", "a.m.g"}


def _module_all(path: Path) -> set[str] | None:
    """The names in a module's ``__all__`` (read, not imported), or None when it declares none."""
    for n in ast.parse(path.read_text()).body:
        if isinstance(n, ast.Assign) and any(getattr(x, "id", "") == "__all__" for x in n.targets):
            return {e.value for e in n.value.elts if isinstance(e, ast.Constant)}
    return None


def _private_imports_across_subpackages(pkg: Path = PKG) -> list[str]:
    """``module: name from target`` for every import that crosses from one subpackage into another
    and takes a private name: a name with a leading underscore, or a name that its (private)
    implementation module does not declare in its ``__all__``. A module's ``__all__`` is what it
    offers the rest of the package (scikit-image's pattern: ``from ..morphology._util import ...``);
    everything else in it is its own. The root's private helper modules (``_files``, ``_lazy``,
    ``_progress``: the package's shared plumbing) may be imported anywhere, by the same rule."""
    found = []
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).parts
        here = rel[0] if len(rel) > 1 else ""
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level < 1:
                continue
            base = list(rel[:-1])[: len(rel) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            if not target or target[0] == here:
                continue
            source = pkg.joinpath(*target).with_suffix(".py")
            offered = _module_all(source) if source.is_file() else None
            for alias in node.names:
                if alias.name.startswith("_") or (source.is_file() and alias.name not in (offered or set())):
                    found.append(f"{'/'.join(rel)}: {alias.name} from {'.'.join(target)}")
        found += _private_getattrs_across_subpackages(path, rel, here)
    return sorted(found)


def _private_getattrs_across_subpackages(path: Path, rel: tuple[str, ...], here: str) -> list[str]:
    """``getattr(module, "_name")`` on a module imported from another subpackage: the same private
    access as an import, spelled so that the import check does not see it."""
    tree = ast.parse(path.read_text())
    foreign: dict[str, str] = {}  # local name -> the other subpackage's module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            target = list(rel[:-1])[: len(rel) - node.level] + (node.module.split(".") if node.module else [])
            if target and target[0] != here:
                foreign.update({a.asname or a.name: ".".join(target + [a.name]) for a in node.names})
    return [f"{'/'.join(rel)}: {node.args[1].value} of {foreign[node.args[0].id]} (getattr)"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name) and node.args[0].id in foreign
            and isinstance(node.args[1], ast.Constant) and str(node.args[1].value).startswith("_")]


def test_no_private_name_is_imported_across_subpackages(tmp_path):
    assert _private_imports_across_subpackages() == []
    # the checker sees an underscore name, a name its module does not offer, a module with no
    # __all__, and a getattr; it lets through what a module's __all__ offers and the package's names
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "__init__.py").write_text("")
    (tmp_path / "a" / "_impl.py").write_text("__all__ = ['shown']\nshown = kept = 1\n")
    (tmp_path / "a" / "_bare.py").write_text("x = 1\n")
    (tmp_path / "_files.py").write_text("__all__ = ['ok']\nok = 1\n")
    (tmp_path / "b" / "m.py").write_text("from ..a._impl import _hidden, shown, kept\nfrom ..a._bare import x\n"
                                         "from .._files import ok\nfrom ..a import y\nf = getattr(y, '_key', None)\n")
    assert _private_imports_across_subpackages(tmp_path) == [
        "b/m.py: _hidden from a._impl", "b/m.py: _key of a.y (getattr)", "b/m.py: kept from a._impl",
        "b/m.py: x from a._bare"]


def _public_implementation_modules(pkg: Path = PKG) -> list[str]:
    """``subpackage.module`` of every implementation module without a leading underscore: the
    public surface is each subpackage's list of names, and every module behind it is private
    (``_module.py``), as in scikit-image."""
    return sorted(f"{sub.name}.{m.stem}" for sub in pkg.iterdir() if (sub / "__init__.py").is_file()
                  for m in sub.glob("*.py") if not m.name.startswith("_"))


def test_every_implementation_module_is_private(tmp_path):
    assert _public_implementation_modules() == []
    (tmp_path / "a").mkdir()
    for name in ("__init__.py", "_impl.py", "shown.py"):
        (tmp_path / "a" / name).write_text("")
    assert _public_implementation_modules(tmp_path) == ["a.shown"]


#: Parameter names that carry a study or model object (a learner, a trained or exported model, a study).
CARRIERS = {"tm", "model", "models", "study", "trained", "learner", "learn", "s1", "exported", "net", "network", "top"}


def _any_typed_carriers(pkg: Path = PKG) -> list[str]:
    found = []
    for path in sorted(pkg.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs:
                    if (arg.arg in CARRIERS and arg.annotation is not None
                            and ast.unparse(arg.annotation).strip("'\"") in ("Any", "typing.Any", "object")):
                        found.append(f"{path.relative_to(pkg)}:{node.lineno} {node.name}({arg.arg})")
    return found


def test_no_study_or_model_object_is_typed_any(tmp_path):
    """A parameter that carries a study or model object names its type (what it needs is then
    checkable), instead of ``Any`` to get around the layering."""
    assert _any_typed_carriers() == []
    (tmp_path / "m.py").write_text("from typing import Any\ndef f(model: Any, n: Any, study: 'Any'): pass\n")
    assert _any_typed_carriers(tmp_path) == ["m.py:2 f(model)", "m.py:2 f(study)"]


def test_every_package_has_a_type_stub_that_matches_its_lazy_names():
    """``__init__.pyi`` (what IDEs and type checkers read) lists exactly the names ``_NAMES`` loads,
    each from the module that defines it; regenerate with ``python -m semcathode._stubs``."""
    from semcathode._stubs import PACKAGES, _stub_path, stub_text

    assert (PKG / "py.typed").exists()
    assert {p.split(".")[-1] for p in PACKAGES[1:]} == set(FLOW)
    for package in PACKAGES:
        path = _stub_path(package)
        assert path.exists(), f"{path} is missing: run python -m semcathode._stubs"
        assert path.read_text(encoding="utf-8") == stub_text(package), (
            f"{path} does not match {package}._NAMES: run python -m semcathode._stubs")
        tree = ast.parse(path.read_text(encoding="utf-8"))  # and it is valid Python naming real modules
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                base = PKG.joinpath(*package.split(".")[1:], *node.module.split("."))
                assert base.with_suffix(".py").exists() or (base / "__init__.py").exists(), (path, node.module)


def test_import_semcathode_loads_no_heavy_library():
    """``python -X importtime -c "import semcathode"`` lists no torch, fastai, matplotlib …"""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import semcathode"],
                         capture_output=True, text=True, check=True).stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in err.splitlines() if "|" in line}
    heavy = {"torch", "fastai", "matplotlib", "pytorch_grad_cam", "timm", "sklearn", "papermill", "pandas"}
    assert not imported & heavy, sorted(imported & heavy)


README = PKG.parent / "README.md"
#: Variables that other programs set for ours (torchrun, the launcher, the command line's quiet hub).
#: Also the standard ones the tests set for the program under test.
EXTERNAL_ENV = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS",
                "HF_HUB_DISABLE_PROGRESS_BARS", "HOME", "MPLBACKEND"}
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{2,}")


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _env_reads(roots: list[Path]) -> tuple[set[str], list[str]]:
    """Every environment variable the code under ``roots`` names, and every place library code
    assigns into ``os.environ``.

    A name counts when it is a ``SEMCATHODE_*`` string constant, or the literal, module constant or
    loop variable over a tuple of literals given to ``os.environ.get / [ ] / os.getenv /
    monkeypatch.setenv / delenv``."""
    names, writes = set(), []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if path.resolve() == Path(__file__).resolve():  # this checker's own examples
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                      and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                      for t in n.targets if isinstance(t, ast.Name)}
            loops = {n.target.id: [e.value for e in n.iter.elts if isinstance(e, ast.Constant)]
                     for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                     and isinstance(n.iter, (ast.Tuple, ast.List))}

            def named(arg: ast.AST) -> list[str]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    return [arg.value]
                if isinstance(arg, ast.Name):
                    return loops.get(arg.id) or ([consts[arg.id]] if arg.id in consts else [])
                return []

            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                        and node.value.startswith("SEMCATHODE_") and _ENV_NAME.fullmatch(node.value)):
                    names.add(node.value)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                    f = node.func
                    if ((f.attr in ("get", "pop", "setdefault") and _is_environ(f.value))
                            or f.attr in ("getenv", "setenv", "delenv")):
                        names.update(named(node.args[0]))
                elif isinstance(node, ast.Subscript) and _is_environ(node.value):
                    names.update(named(node.slice))
                    if isinstance(node.ctx, ast.Store) and root.name == PKG.name:
                        writes.append(f"{path.relative_to(root)}:{node.lineno}")
    return {n for n in names if _ENV_NAME.fullmatch(n)}, writes


def _readme_env_table(text: str) -> set[str]:
    section = text.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]
    return {name for line in section.splitlines() if line.startswith("| ") and line.count("|") >= 5
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[2])}


def test_every_environment_variable_is_in_the_readme_table_and_none_carries_a_setting(tmp_path):
    """Only locations, offline switches and input guards live in the environment, each a row of
    the README's one table (and the table names nothing the code no longer reads); the library
    never sets a variable for another process to read a setting from."""
    names, writes = _env_reads([PKG, PKG.parent / "tests"])
    table = _readme_env_table(README.read_text(encoding="utf-8"))
    assert names - EXTERNAL_ENV - table == set(), "variables missing from README's Environment variables table"
    assert table - names == set(), "README's table names variables the code does not read"
    assert writes == []
    (tmp_path / "m.py").write_text('import os\nX_ENV = "SEMCATHODE_X"\nos.environ.get("FOO_BAR")\n'
                                   'for v in ("A_B", "C_D"):\n    os.environ[v]\nos.getenv(X_ENV)\n')
    assert _env_reads([tmp_path])[0] == {"SEMCATHODE_X", "FOO_BAR", "A_B", "C_D"}
    assert _readme_env_table("x\n## Environment variables\n| a | `B_C` | d | e |\n|---|---|---|---|\n## Next\n"
                             "| a | `E_F` | d | e |\n") == {"B_C"}
