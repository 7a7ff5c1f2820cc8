"""LaTeX (booktabs) rendering of the report tables.

:func:`to_latex` takes the same list of row dicts that :func:`segaug.report.tables.write_table`
writes as CSV/Markdown (Table 1, Table 2, the ablation tables, ...) and returns a ``table``
environment holding a booktabs ``tabular``::

    \\begin{table}[t]
      \\centering
      \\caption{...}
      \\label{...}
      \\begin{tabular}{lrr}
        \\toprule
        model & miou\\_mean & miou\\_std \\\\
        \\midrule
        ...
        \\bottomrule
      \\end{tabular}
    \\end{table}

Cells are printed exactly as ``str()`` prints them in the CSV (no rounding or reformatting):
``None`` becomes an empty cell and a float NaN ``--``. Text is escaped for LaTeX (``_ & % $ #
{ } ~ ^ \\``) and a few symbols the tables use (``±``, ``×``, ``−``, ``→``, ``≤``, ``≥``) become
math. Columns whose every non-empty cell is a number are right-aligned, the rest left-aligned.
The document needs ``\\usepackage{booktabs}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from segaug.errors import SegaugError

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "−": r"$-$",
    "→": r"$\rightarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
}
_ESCAPE_RE = re.compile("|".join(re.escape(k) for k in _ESCAPES))
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (see the module docstring)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], str(text))


def cell(value) -> str:
    """One cell as printed: ``None`` -> empty, NaN -> ``--``, anything else ``str()`` escaped."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "--"
    return escape(str(value))


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and bool(_NUMBER_RE.match(value.strip()))


def _align(rows: Sequence[Mapping], col: str) -> str:
    values = [r.get(col) for r in rows if r.get(col) not in (None, "")]
    return "r" if values and all(_is_number(v) for v in values) else "l"


def to_latex(
    rows: Sequence[Mapping],
    caption: str | None = None,
    label: str | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """A booktabs ``table`` of ``rows`` (dicts; columns are the first row's keys unless given).

    ``caption`` is escaped; ``label`` is written as given (a LaTeX key such as ``tab:table2``).
    Keys starting with ``_`` (private numeric fields) are left out when ``columns`` is not given.
    """
    if not rows:
        raise SegaugError("no rows to write: no metrics matched the table")
    cols = list(columns) if columns is not None else [c for c in rows[0] if not str(c).startswith("_")]
    if not cols:
        raise SegaugError("LaTeX table: no columns to write")
    spec = "".join(_align(rows, c) for c in cols)
    lines = ["\\begin{table}[t]", "  \\centering"]
    if caption:
        lines.append(f"  \\caption{{{escape(caption)}}}")
    if label:
        lines.append(f"  \\label{{{label}}}")
    lines += [
        f"  \\begin{{tabular}}{{{spec}}}",
        "    \\toprule",
        "    " + " & ".join(escape(c) for c in cols) + " \\\\",
        "    \\midrule",
    ]
    lines += ["    " + " & ".join(cell(r.get(c)) for c in cols) + " \\\\" for r in rows]
    lines += ["    \\bottomrule", "  \\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
