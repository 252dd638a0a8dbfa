"""Griffe extension of the docs build: the Napoleon dialect of the docstrings, read as griffe reads Google style.

The docstrings are Google style as Sphinx's Napoleon reads it; griffe's parser differs in three ways, which
this extension bridges on the parsed text (the source is untouched):

* Sphinx roles (``:func:`~augrobust.train.train```) would be printed literally: they become inline code
  (``~``: the last component, as Sphinx shows it).
* ``Example:`` (singular) is an examples section for Napoleon, an admonition for griffe (whose doctest lines
  would then be read as Markdown): it becomes ``Examples:``.
* ``a, b, c: text`` in an ``Args:`` section documents three parameters for Napoleon, one unknown parameter
  for griffe: it becomes one entry per name.
* ``augrobust.v2`` and ``augrobust.compat`` make their classes and functions at import time
  (``GaussianNoise = v2_form(...)``, ``fog = _make("fog")``), which a static reading sees as undocumented
  attributes; and ``augrobust.functional.frequency_mask`` is both a submodule and the function that the
  package exports under that name (the import rebinds it). Those members are replaced by what an import shows
  (the runtime object's docstring and signature).
* Constants are documented with ``#:`` comments above the assignment (Sphinx autodoc's convention), which
  griffe does not read: they become the attribute's docstring.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const|ref|term):`(~?)([^`]+)`")


_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters):\s*$")
_SEVERAL = re.compile(r"^(\s+)([A-Za-z_]\w*(?:, [A-Za-z_]\w*)+): (.*)$")


def _split_params(text: str) -> str:
    lines, out, section_indent = text.split("\n"), [], None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
        elif section_indent is not None and line.strip() and len(line) - len(line.lstrip()) <= section_indent:
            section_indent = None
        several = _SEVERAL.match(line) if section_indent is not None else None
        if several:
            indent, names, rest = several.groups()
            out.extend(f"{indent}{name}: {rest}" for name in names.split(", "))
        else:
            out.append(line)
    return "\n".join(out)


def _plain(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"``{target.rsplit('.', 1)[-1] if tilde else target}``"


@functools.cache
def _source_lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def _comment_doc(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above ``attr``'s assignment, joined."""
    if not attr.lineno or not isinstance(attr.filepath, Path):
        return None
    lines, above, i = _source_lines(str(attr.filepath)), [], attr.lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        above.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    return " ".join(above) or None


#: Modules whose exported classes and functions are made at import time, or shadow a submodule.
DYNAMIC_MODULES = ("augrobust.v2", "augrobust.compat", "augrobust.functional")


class NapoleonDialect(griffe.Extension):
    """Rewrite every docstring into the dialect griffe parses; read made-at-import members by inspection."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for name in DYNAMIC_MODULES:
            if not name.startswith(pkg.path + ".") or name.removeprefix(pkg.path + ".") not in pkg.modules:
                continue
            static = pkg[name.removeprefix(pkg.path + ".")]
            inspected = griffe.inspect(
                name, filepath=static.filepath, import_paths=list(sys.path), docstring_parser=loader.docstring_parser,
                docstring_options=loader.docstring_options, extensions=griffe.load_extensions(type(self)),
            )  # fmt: skip
            for member in static.exports or []:
                old, new = static.members.get(member), inspected.members.get(member)
                if old is None or old.is_alias:
                    continue
                if old.is_module and member in old.members:  # the submodule's function of the same name
                    static.set_member(member, griffe.Alias(member, old.members[member], parent=static))
                elif old.is_attribute and new is not None and not new.is_alias and (new.is_class or new.is_function):
                    static.set_member(member, new)

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is None and (text := _comment_doc(attr)):
            attr.docstring = griffe.Docstring(text, lineno=attr.lineno, parent=attr)
            self.on_instance(obj=attr)

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(_plain, obj.docstring.value)
            text = re.sub(r"^(\s*)Example:\s*$", r"\1Examples:", text, flags=re.MULTILINE)
            obj.docstring.value = _split_params(text)
