"""What the notebooks call to put results on the page: a figure with its caption, a table with
every value formatted and escaped, and numbers formatted for prose (accuracy with its n and
standard error). The report template reads the figure's caption from the output's metadata.
"""
from __future__ import annotations

import json
import math
from pathlib import Path


def se(p: float, n: int) -> float:
    """Standard error of a proportion p measured on n samples: sqrt(p (1 - p) / n)."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def rule_se(p: float, n: int) -> float:
    """The standard error the page's choice rules use: Agresti and Coull's (1998) adjusted
    proportion, two successes and two failures added, p~ = (p n + 2) / (n + 4) and
    sqrt(p~ (1 - p~) / (n + 4)). Near the plain :func:`se` in between, it stays above 0 at 0% and
    100%, where the plain one is 0 and a perfect score would leave no other choice within it."""
    if not n:
        return float("nan")
    q = (p * n + 2) / (n + 4)
    return math.sqrt(q * (1 - q) / (n + 4))


def pct(p: float, n: int | None = None, *, digits: int = 1) -> str:
    """"98.0%", or with n "98.0% ± 1.4 (n = 100)" (± one standard error, in points). At 0% or
    100% the standard error is 0 and says nothing: the rule of three bounds the rate instead
    (below 3/n at 95% confidence)."""
    s = f"{100 * p:.{digits}f}%"
    if n is None:
        return s
    if n and p in (0.0, 1.0):
        what = "error" if p == 1.0 else "hit"
        return f"{s} (n = {n:,}; no {what}: its rate is below {300 / n:.{digits}f}% at 95% confidence)"
    return f"{pct_se(p, n, digits=digits)} (n = {n:,})"


def pct_se(p: float, n: int, *, digits: int = 1) -> str:
    """"98.0% ± 1.4" (± one standard error, in points, on n samples), the short form for prose
    that states n once; at 0% or 100%, where the standard error is 0, the bare "100.0%"."""
    s = f"{100 * p:.{digits}f}%"
    return s + (f" ± {100 * se(p, n):.{digits}f}" if 0 < p < 1 else "")


def spoken_list(items) -> str:
    """Items joined as prose lists them: "a", "a and b", "a, b and c"."""
    items = [str(x) for x in items]
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def signed(v: float, fmt="{:.2f}") -> str:
    """A number for prose with a minus sign (U+2212) where it is negative, e.g. "{:+.0f}";
    ``fmt`` a format string or a function of the number."""
    return (fmt(v) if callable(fmt) else fmt.format(v)).replace("-", "\u2212")


def checkpoint_note(path) -> str | None:
    """"p1_ddpm (5,235 steps, trained at commit abc1234)" for a folder with a manifest."""
    man = Path(path) / "manifest.json" if path else None
    if man is None or not man.is_file():
        return None
    m = json.loads(man.read_text())
    bits = [f"{m['steps_done']:,} steps" if "steps_done" in m else None,
            f"trained at commit {str(m['commit'])[:7]}" if m.get("commit") else None]
    return f"{Path(path).name} ({', '.join(b for b in bits if b)})"


# parameter names as the page's prose writes them
DETAIL_NAMES = {"eta": "η", "w": "w", "alpha": "α"}


def run_details(**details) -> str:
    """``seed 0 · w = 4 · checkpoint p1_ddpm (...)``: the values that drew a figure."""
    parts = []
    for k, v in details.items():
        note = checkpoint_note(v) if isinstance(v, (str, Path)) and v else None
        if note:
            parts.append(f"checkpoint {note}")
        elif v is not None and v != "":
            parts.append(f"{DETAIL_NAMES.get(k, k)} = {v:g}" if isinstance(v, float)
                         else f"{DETAIL_NAMES.get(k, k)} = {v}")
    return " · ".join(parts)


def figure(fig, path, caption: str, **details) -> None:
    """Save ``fig`` as PNG at ``path``, display it with ``caption`` (one sentence: what the
    figure shows) and the run ``details`` (parameters, seed, checkpoint folders) that the page
    prints under it, and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    from ..viz import save_figure
    path = save_figure(fig, path)
    plt.close(fig)
    display(Image(filename=str(path)),
            metadata={"hw2": {"caption": caption, "details": run_details(**details)}})


def header_html(text) -> str:
    """A table header as HTML: escaped (so "<new1>" shows as text), its ``$...$`` formulas as
    MathML like the page's prose (:mod:`hw2lib.report.mathml`)."""
    import html

    from .mathml import tex_to_mathml
    parts = str(text).split("$")  # even: text, odd: TeX
    return "".join(html.escape(t) if i % 2 == 0 else tex_to_mathml(t)
                   for i, t in enumerate(parts))


def table(df, *, formats: dict | str | None = None, caption: str | None = None,
          index: bool = False, headers: dict | None = None):
    """Display a DataFrame as an HTML table: values formatted (``formats``: a format string or
    {column: format}; floats default to 3 significant digits), HTML in cells and headers
    escaped (so "<new1>" shows as text), missing values as a dash, no index unless asked.
    ``headers``: {column: header shown}; a header's or the caption's ``$...$`` is typeset (the
    formats stay keyed by the column names)."""
    import pandas as pd
    from IPython.display import HTML, display
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    fmt = {c: "{:.3g}" for c in floats}
    fmt.update({c: "{:,}" for c in df.columns if pd.api.types.is_integer_dtype(df[c])})
    if isinstance(formats, str):
        fmt = {c: formats for c in floats}
    elif formats:
        fmt.update(formats)
    numeric = {c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])}
    # a number's sign as a minus sign (U+2212), not a hyphen
    fmt = {c: (lambda v, f=f: signed(v, f)) if c in numeric else f for c, f in fmt.items()}
    styler = (df.style.format(fmt, escape="html", na_rep="–")
              .format_index(lambda c: header_html((headers or {}).get(c, c)), axis=1)
              .format_index(escape="html", axis=0)
              .set_table_attributes('class="hw2-table"'))
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
        cols = list(df.columns)
        styler = styler.set_table_styles(  # their headers too
            [{"selector": f"th.col_heading.col{cols.index(c)}", "props": "text-align: left"}
             for c in text], overwrite=False)
    if not index:
        styler = styler.hide(axis="index")
    if caption:
        styler = styler.set_caption(header_html(caption))
    display(HTML(styler.to_html()))
