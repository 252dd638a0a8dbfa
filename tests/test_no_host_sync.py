"""Static check: the kernel modules read no tensor value back to the host outside the listed exceptions.

Scans the code (not the docstrings) of ``augrobust/corruptions/*.py`` and ``augrobust/functional/*.py`` for
``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``, and ``bool()`` / ``int()`` / ``float()`` applied to a
tensor expression (an argument built from a tensor reduction or a ``torch.`` call: the forms a host read takes
in this code base). Every hit must be listed, with its reason, in
``augrobust.functional.sync.HOST_SYNC_EXCEPTIONS`` under ``"module:function"``; a listed entry that no longer
has a hit fails too, so the list can only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import augrobust
from augrobust.functional.sync import HOST_SYNC_EXCEPTIONS

ROOT = Path(augrobust.__file__).parent
MODULES = sorted([*ROOT.glob("corruptions/*.py"), *ROOT.glob("functional/*.py")])
READS = {"item", "tolist", "cpu", "numpy"}
CASTS = {"bool", "int", "float"}
REDUCTIONS = {"any", "all", "sum", "max", "min", "amax", "amin", "mean", "norm", "prod", "count_nonzero", "equal"}


def _tensorish(node: ast.AST) -> bool:
    """An expression that yields a tensor here: a reduction method call or a ``torch.*`` call inside it."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            if sub.func.attr in REDUCTIONS:
                return True
            if isinstance(sub.func.value, ast.Name) and sub.func.value.id == "torch":
                return True
    return False


def _hits(path: Path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    found: dict[str, list[str]] = {}

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = f"{scope}.{child.name}" if scope and isinstance(child, (ast.FunctionDef, ast.ClassDef)) else (
                child.name if isinstance(child, (ast.FunctionDef, ast.ClassDef)) else scope
            )
            if isinstance(child, ast.Call):
                func = child.func
                if isinstance(func, ast.Attribute) and func.attr in READS and not child.args:
                    found.setdefault(scope or "<module>", []).append(f"line {child.lineno}: .{func.attr}()")
                elif isinstance(func, ast.Name) and func.id in CASTS and child.args and _tensorish(child.args[0]):
                    found.setdefault(scope or "<module>", []).append(f"line {child.lineno}: {func.id}(tensor)")
            visit(child, inner)

    visit(tree, "")
    return found


def _all_hits() -> dict[str, list[str]]:
    out = {}
    for path in MODULES:
        module = f"{path.parent.name}/{path.stem}"
        for scope, lines in _hits(path).items():
            out[f"{module}:{scope}"] = lines
    return out


def test_scanner_finds_a_host_read() -> None:
    """The scanner itself: each form is caught, a shape computation is not."""
    code = (
        "def f(x, n):\n    a = x.item()\n    b = bool((x > 0).any())\n    c = int(torch.floor(x))\n"
        "    d = int(n * 0.5 + 1)\n    return x.cpu().numpy()\n"
    )
    tmp = Path(__file__).parent / "_scanner_probe.py"
    try:
        tmp.write_text(code)
        hits = _hits(tmp)
    finally:
        tmp.unlink()
    assert sorted(hits) == ["f"] and len(hits["f"]) == 5, hits


def test_no_unlisted_host_reads_in_kernels() -> None:
    hits = _all_hits()
    unlisted = {k: v for k, v in hits.items() if k not in HOST_SYNC_EXCEPTIONS}
    assert not unlisted, f"host reads outside HOST_SYNC_EXCEPTIONS (remove them or list them with a reason): {unlisted}"


def test_listed_exceptions_still_read() -> None:
    stale = sorted(set(HOST_SYNC_EXCEPTIONS) - set(_all_hits()))
    assert not stale, f"these HOST_SYNC_EXCEPTIONS no longer read the host; remove them: {stale}"
    assert all(len(reason) > 30 for reason in HOST_SYNC_EXCEPTIONS.values())
