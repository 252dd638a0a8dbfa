"""MkDocs hooks of the augrobust site: the docstring check and the gallery.

* ``on_pre_build``: every public name of the documented modules (its module's ``__all__``), and every public
  method of a public class, must have a docstring; each one missing is a warning, which ``mkdocs build
  --strict`` turns into a failed build. Functions, classes and modules are checked on the imported objects
  (inherited method docstrings count, as ``help()`` shows them); constants by their attribute docstring (the
  string literal after the assignment), which only the source has, read with griffe.
* ``on_files``: the gallery (``docs/_scripts/gallery.py``) is drawn into ``build/docs-gallery`` and its PNGs
  and ``gallery.md`` are added to the site as generated files. ``AUGROBUST_DOCS_GALLERY=small`` draws it from
  small images only (the docs test), ``=0`` writes the page without pictures; ``AUGROBUST_DOCS_GALLERY_DIR``
  moves the drawing folder (the test draws into its temporary folder).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.augrobust")

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"


def documented_modules() -> dict[str, Path]:
    """Module -> its API page: the module named by the first ``:::`` directive of each ``docs/api/*.md``.

    A page for a new module is all it takes to put the module under the docstring check (and the docs test).
    """
    pages: dict[str, Path] = {}
    for page in sorted(API.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        directives = [line[4:].strip() for line in lines if line.startswith("::: ")]
        if directives:
            pages[directives[0]] = page
    return pages


# The modules whose pages are in the API reference.
DOCUMENTED = tuple(documented_modules())


def _own_doc(obj: Any) -> str | None:
    if isinstance(obj, type):
        return obj.__dict__.get("__doc__")
    return inspect.getdoc(obj)


def _constant_docs(module_name: str, search_path: Path) -> dict[str, str | None]:
    """The attribute docstrings of a module's exported names, from the source (griffe)."""
    import griffe

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from griffe_napoleon import NapoleonDialect  # the extension the site's build uses
    finally:
        sys.path.pop(0)
    package = griffe.load(
        module_name,
        search_paths=[str(search_path)],
        resolve_aliases=True,
        resolve_external=False,
        extensions=griffe.load_extensions(NapoleonDialect),
    )
    found: dict[str, str | None] = {}
    for name in package.exports or []:
        try:
            target = package[name].final_target if package[name].is_alias else package[name]
        except Exception:  # an export griffe cannot follow statically: the runtime check covers it
            continue
        found[name] = target.docstring.value if target.docstring else None
    return found


def missing_docstrings(modules: Sequence[str] = DOCUMENTED, search_path: Path = ROOT) -> list[str]:
    """Every public name of ``modules`` (found under ``search_path``) without a docstring, as dotted paths."""
    if str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
    missing: list[str] = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        if not module.__doc__:
            missing.append(module_name)
        constants: dict[str, str | None] | None = None
        for name in module.__all__:
            if name == "__version__":
                continue
            obj = getattr(module, name)
            if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)):
                if not _own_doc(obj):
                    missing.append(f"{module_name}.{name}")
            else:  # a constant: its docstring lives in the source only
                constants = _constant_docs(module_name, search_path) if constants is None else constants
                if not constants.get(name):
                    missing.append(f"{module_name}.{name}")
            if isinstance(obj, type) and obj.__module__.split(".")[0] == module_name.split(".")[0]:  # not torch's
                for member, value in vars(obj).items():
                    if member.startswith("_") or not callable(value) and not isinstance(value, property):
                        continue
                    if not inspect.getdoc(getattr(obj, member)):
                        missing.append(f"{module_name}.{name}.{member}")
    return sorted(set(missing))


def on_pre_build(config: Any, **kwargs: Any) -> None:
    for path in missing_docstrings():
        log.warning("Public name without a docstring: %s", path)


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    sys.path.insert(0, str(ROOT / "docs" / "_scripts"))
    try:
        import gallery
    finally:
        sys.path.pop(0)
    mode = os.environ.get("AUGROBUST_DOCS_GALLERY", "full")
    if mode not in ("full", "small", "0"):
        raise ValueError(f"AUGROBUST_DOCS_GALLERY={mode!r}: use full (the default), small or 0 (no pictures).")
    out = Path(os.environ.get("AUGROBUST_DOCS_GALLERY_DIR", ROOT / "build" / "docs-gallery"))
    page = gallery.build(out, mode=mode)
    for png in sorted(out.glob("*.png")) if mode != "0" else []:
        files.append(File.generated(config, f"gallery/{png.name}", abs_src_path=str(png)))
    files.append(File.generated(config, "gallery.md", content=page))
    return files
