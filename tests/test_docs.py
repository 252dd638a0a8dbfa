"""The docs site: every tutorial's code runs, and the site builds strictly with every public name on it.

A tutorial page (``docs/tutorials/*.md``) is run as one script, its blocks in page order: a ```` ```python ````
block as it is, a ```` ```bash ```` block as shell commands (``augrobust`` being this checkout's command), in a
fresh temporary folder, so that a page cannot rot. The build test runs ``mkdocs build --strict`` (what
``make docs`` runs) with the gallery drawn from small images, then checks the HTML: every name of every
documented module's ``__all__`` has its entry, no page loads anything from the network, and the gallery's
pictures are there.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
FENCE = re.compile(r"^```(python|bash)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def page_script(markdown: str) -> str:
    """The tutorial's runnable blocks as one Python script, in page order."""
    parts = []
    for lang, body in FENCE.findall(markdown):
        if lang == "python":
            parts.append(body)
        else:
            commands = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
            shell = "set -e\n" + "\n".join(commands)  # any failing command fails the page
            run = f"_sp.run({shell!r}, shell=True, executable='/bin/bash', check=True)"
            parts.append(f"import subprocess as _sp\n{run}\n")
    return "\n".join(parts)


def _env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "_bin"
    bin_dir.mkdir()
    shim = bin_dir / "augrobust"  # this checkout's command, whatever is installed
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from augrobust.cli import main; "
                    f"sys.exit(main())' \"$@\"\n")  # fmt: skip
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test_fence_extraction_keeps_order_and_skips_other_languages() -> None:
    md = "```python\na = 1\n```\n\n```text\nnot run\n```\n\n```bash\n# a comment\necho hi \\\n  there\n```\n"
    script = page_script(md)
    assert script.index("a = 1") < script.index("echo hi \\\\\\n  there")
    assert "not run" not in script and "a comment" not in script


def test_every_tutorial_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    assert TUTORIALS, "no tutorial found"
    for page in TUTORIALS:
        assert f"tutorials/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page: Path, tmp_path: Path) -> None:
    script = page_script(page.read_text())
    assert script.strip(), f"{page.name} has no runnable block"
    (tmp_path / "tutorial.py").write_text(script)
    result = subprocess.run([sys.executable, "tutorial.py"], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"{page.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def _hooks() -> types.ModuleType:
    sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
    try:
        return importlib.import_module("site_hooks")
    finally:
        sys.path.pop(0)


def test_docstring_check_finds_undocumented_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docless_pkg.py").write_text(textwrap.dedent('''
        """A module."""
        __all__ = ["documented", "bare", "Thing", "LIMIT", "OTHER"]
        #: The limit.
        LIMIT = 3
        OTHER = 4
        def documented():
            """Has one."""
        def bare():
            pass
        class Thing:
            """A thing."""
            def method(self):
                pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    hooks = _hooks()
    missing = hooks.missing_docstrings(["docless_pkg"], search_path=tmp_path)
    assert missing == ["docless_pkg.OTHER", "docless_pkg.Thing.method", "docless_pkg.bare"]


def test_every_documented_public_name_has_a_docstring() -> None:
    assert _hooks().missing_docstrings() == []


@pytest.mark.slow
def test_site_builds_strict_with_every_public_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**_env(tmp_path), "AUGROBUST_DOCS_GALLERY": "small", "AUGROBUST_DOCS_GALLERY_DIR": str(tmp_path / "gallery"),
           "NO_MKDOCS_2_WARNING": "1"}  # fmt: skip
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(site)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    hooks = _hooks()
    assert len(hooks.DOCUMENTED) >= 10, hooks.DOCUMENTED
    for module_name, md in hooks.documented_modules().items():
        page = site / "api" / md.stem
        html = (page / "index.html").read_text()
        ids = set(re.findall(r'id="([^"]+)"', html))
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if name == "__version__":
                continue
            if isinstance(value, types.ModuleType):  # a submodule: its own page
                assert (site / "api" / value.__name__.split(".")[-1] / "index.html").is_file(), value.__name__
                continue
            assert f"{module_name}.{name}" in ids, f"{module_name}.{name} is missing from {page}"

    remote = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.IGNORECASE)
    for html_file in site.rglob("*.html"):
        match = remote.search(html_file.read_text())
        assert match is None, f"{html_file.relative_to(site)} loads a remote asset: {match.group(0)}"
    for css in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\((['\"]?)https?:", css.read_text()), f"{css} imports a remote stylesheet"

    gallery = (site / "gallery" / "index.html").read_text()
    pictures = sorted(p.name for p in (site / "gallery").glob("*.png"))
    assert pictures == ["corruptions_photo.png", "corruptions_testimage.png", "transforms_photo.png",
                        "transforms_testimage.png"]  # fmt: skip
    for name in pictures:
        assert f'src="../gallery/{name}"' in gallery or f'src="{name}"' in gallery, name
