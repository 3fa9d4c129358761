"""dvc.yaml's code deps of every stage are exactly the stage script's static import closure (salsa2.* and
stages/common.py, read with ast), both ways: nothing the stage runs is missing (an edit would leave it
"up to date") and nothing it never imports is listed (an edit would re-run it for nothing).

``python tests/pipeline/test_dvc_deps.py`` prints each stage's closure, ready to paste into dvc.yaml.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

if __name__ == "__main__":  # run as a script: the helpers live one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import REPO  # noqa: E402

SRC = REPO / "src"


def _module_files(module: str) -> list[Path]:
    """The files Python executes to import ``module``: every package ``__init__`` on the way and the module."""
    parts = module.split(".")
    files = []
    for i in range(1, len(parts) + 1):
        base = SRC.joinpath(*parts[:i])
        if (base / "__init__.py").exists():
            files.append(base / "__init__.py")
        elif base.with_suffix(".py").exists():
            files.append(base.with_suffix(".py"))
    return files


def _imports(path: Path) -> list[Path]:
    """Files that ``path`` imports directly (salsa2 modules and the stage helper ``common``), lazy ones included."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1]) if SRC in path.parents else ""
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "common":
                found.append(REPO / "stages" / "common.py")
            elif name == "salsa2" or name.startswith("salsa2."):
                found.extend(_module_files(name))
    return found


def closure(script: str | Path) -> set[str]:
    """Repo-relative paths of ``script`` and every file of this repository it imports, transitively."""
    todo, seen = [REPO / script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(_imports(path))
    return {p.relative_to(REPO).as_posix() for p in seen}


def declared_code(stage: dict) -> set[str]:
    """The .py files a dvc.yaml stage lists under deps (folders expanded)."""
    out: set[str] = set()
    for dep in stage.get("deps", []):
        path = REPO / dep
        if not (dep.startswith("src/") or dep.startswith("stages/")):
            continue
        if path.is_dir():
            out |= {p.relative_to(REPO).as_posix() for p in path.rglob("*.py")}
        else:
            out.add(dep)
    return out


def stages() -> dict[str, tuple[str, dict]]:
    """dvc.yaml stage name -> (script, definition); foreach stages by their template."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, body in spec.items():
        body = body.get("do", body)
        script = next(w for w in body["cmd"].split() if w.startswith("stages/") and w.endswith(".py"))
        out[name] = (script, body)
    return out


@pytest.mark.parametrize("name", sorted(stages()))
def test_code_deps_are_the_import_closure(name: str) -> None:
    script, body = stages()[name]
    want, have = closure(script), declared_code(body)
    assert not want - have, f"dvc.yaml stage {name} misses code it runs: {sorted(want - have)}"
    assert not have - want, f"dvc.yaml stage {name} lists code it never imports: {sorted(have - want)}"


def test_closure_follows_packages_and_lazy_imports(tmp_path: Path) -> None:
    """The closure walker itself: package __init__ files, submodules named in a from-import, lazy imports."""
    got = closure("stages/prepare.py")
    assert {"stages/prepare.py", "stages/common.py", "src/salsa2/__init__.py", "src/salsa2/data/datasets/__init__.py",
            "src/salsa2/data/datasets/clotho.py", "src/salsa2/config/params.py"} <= got
    assert "src/salsa2/training/loop.py" not in got


def test_layout_keeps_stages_apart() -> None:
    """Data stages never reach training code; ensemble (similarities) and evaluate never reach the optimiser or
    losses."""
    training = {"src/salsa2/training/loop.py", "src/salsa2/training/two_stage.py", "src/salsa2/training/augment.py",
                "src/salsa2/training/amp.py",
                "src/salsa2/training/losses/__init__.py"}
    for script in ("stages/demo.py", "stages/prepare.py", "stages/features.py", "stages/text_features.py",
                   "stages/ensemble.py", "stages/evaluate.py"):
        assert not closure(script) & training, f"{script} imports {sorted(closure(script) & training)}"


@pytest.mark.parametrize("script", ["demo", "prepare", "salsa2.distill.ensemble"])
def test_light_stages_do_not_import_torch(script: str) -> None:
    """Importing the stage script (its __main__ block does not run) leaves torch unloaded; so does the teacher-set
    logic that stage2 looks its targets up with."""
    code = f"import sys; sys.path.insert(0, 'stages'); import {script}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def compact(paths: set[str]) -> list[str]:
    """The fewest deps that list exactly ``paths``: a folder where every .py file under it is in ``paths``."""
    def covered(folder: Path) -> bool:
        return all(p.relative_to(REPO).as_posix() in paths for p in folder.rglob("*.py"))

    out: set[str] = set()
    for path in paths:
        top = REPO / path
        for parent in (REPO / path).parents:  # the outermost fully covered folder below the repository
            if parent == REPO or parent == SRC or parent.name == "stages":
                break
            if covered(parent):
                top = parent
        out.add(top.relative_to(REPO).as_posix())
    return sorted(out)


def write_deps() -> None:
    """Rewrite the code deps of every stage in dvc.yaml (the items under ``deps:`` that name src/ or stages/)."""
    scripts, out, stage, written = stages(), [], None, set()
    for line in (REPO / "dvc.yaml").read_text().splitlines(keepends=True):
        name = line.strip().rstrip(":")
        if line.startswith("  ") and not line.startswith("   ") and name in scripts:
            stage = name
        item = line.strip()[2:] if line.strip().startswith("- ") else ""
        if stage and item.startswith(("src/", "stages/")):
            if stage not in written:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(f"{indent}- {dep}\n" for dep in compact(closure(scripts[stage][0])))
                written.add(stage)
            continue
        out.append(line)
    (REPO / "dvc.yaml").write_text("".join(out))


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_deps()
    for stage, (script, _) in stages().items():
        print(f"{stage}:\n" + "".join(f"        - {p}\n" for p in compact(closure(script))))
