"""TeX formulas to MathML at build time (latex2mathml): the page typesets its formulas with
the browser's own MathML engine, with no script, font file or network.

Markdown keeps the formulas as TeX between ``$ ... $`` (inline) and ``$$ ... $$`` (display), as
JupyterLab renders them; :func:`markdown_to_mathml` replaces each by a one-line ``<math>``
element before the markdown is rendered. A macro latex2mathml does not know would be drawn as
its name: that is an error naming the formula, not a garbled page.
"""
from __future__ import annotations

import re

# $$...$$ first (it may span lines), then $...$ on one line; a backslash-escaped \$ is text,
# and code spans are left alone.
_CODE = re.compile(r"(`+)(?:.+?)\1", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\$)")
_LEFTOVER = re.compile(r">\\[A-Za-z]+<")


class MathError(ValueError):
    pass


def tex_to_mathml(tex: str, *, display: bool = False) -> str:
    """One formula as a single-line ``<math>`` element (``display="block"`` for display math)."""
    from latex2mathml.converter import convert
    out = convert(tex.strip(), display="block" if display else "inline")
    if _LEFTOVER.search(out):
        raise MathError(f"unsupported TeX macro {_LEFTOVER.search(out).group(0)[1:-1]!r} in "
                        f"formula {tex.strip()!r}")
    return out.replace("\n", "")


def markdown_to_mathml(text: str) -> str:
    """Markdown with its ``$...$`` and ``$$...$$`` formulas replaced by MathML."""
    parts, last = [], 0
    for m in _CODE.finditer(text):  # formulas outside code spans only
        parts.append(_convert_span(text[last:m.start()]))
        parts.append(m.group(0))
        last = m.end()
    parts.append(_convert_span(text[last:]))
    return "".join(parts)


def _convert_span(text: str) -> str:
    text = _DISPLAY.sub(lambda m: "\n\n" + tex_to_mathml(m.group(1), display=True) + "\n\n", text)
    return _INLINE.sub(lambda m: tex_to_mathml(m.group(1)), text)
