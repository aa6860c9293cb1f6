"""STAR syntax shared by crYOLO's ``.cbox`` and RELION's ``.star`` files.

starfile parses the values and writes the files; :func:`_scan_star_loops` reads the loops
once more as text so that a bad line can be reported by its line number, which starfile
(through pandas) does not give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lipobench.errors import UserError
from lipobench.formats._common import _number

# Tokens STAR writers use for a missing value: pyStarDB and starfile write "<NA>".
_STAR_MISSING = frozenset({"<NA>", "NA", "nan", "NaN", "None"})


@dataclass(frozen=True)
class _StarLoop:
    """The rows of one STAR loop as text, with their line numbers, for error messages."""

    columns: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def _scan_star_loops(text: str) -> dict[str, _StarLoop]:
    """Find every ``loop_`` block: its column names (no ``_``) and its data lines.

    starfile parses the values; this scan exists so that a bad line can be reported by its
    line number, which starfile (through pandas) does not give.
    """
    loops: dict[str, _StarLoop] = {}
    block = None
    columns: list[str] = []
    rows: list[tuple[int, tuple[str, ...]]] = []
    state = "outside"  # outside a loop, reading its column names, or reading its rows

    def finish():
        if block is not None and state != "outside":
            loops[block] = _StarLoop(tuple(columns), tuple(rows))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line.startswith("data_"):
            finish()
            block, columns, rows, state = line[len("data_"):].strip(), [], [], "outside"
        elif line == "loop_":
            finish()
            columns, rows, state = [], [], "columns"
        elif state == "columns" and line.startswith("_"):
            columns.append(line.split()[0][1:])
        elif state == "columns" and line:
            state = "rows"
            rows.append((lineno, tuple(line.split())))
        elif state == "rows" and line and not line.startswith("_"):
            rows.append((lineno, tuple(line.split())))
        elif state == "rows":
            finish()
            state = "outside"
    finish()
    return loops


def _check_star_rows(path: Path, loop: _StarLoop, numeric: tuple[str, ...],
                     required: tuple[str, ...]) -> list[int]:
    """Check column counts and numbers in ``numeric`` columns; return the rows' line numbers.

    Values in ``required`` columns must be numbers; elsewhere in ``numeric`` a missing
    value (``<NA>``) is allowed.
    """
    width = len(loop.columns)
    position = {name: k for k, name in enumerate(loop.columns)}
    expected_fields = " ".join(f"_{c}" for c in loop.columns)
    for lineno, fields in loop.rows:
        if len(fields) != width:
            raise UserError(f"{path}: line {lineno}: got {len(fields)} values; expected "
                            f"{width}, one per column ({expected_fields})")
        for name in numeric:
            if name not in position:
                continue
            token = fields[position[name]]
            if token in _STAR_MISSING and name not in required:
                continue
            _number(token, path, lineno, f"a number in column _{name}")
    return [lineno for lineno, _ in loop.rows]


def _read_star_blocks(path: Path) -> dict:
    import starfile  # pulls in pandas readers; only the STAR formats need it

    try:
        return starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises bare pandas/parser errors
        raise UserError(f"{path}: is not a readable STAR file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                        "check that it is the file the tool wrote") from None


def _star_text(blocks: Mapping[str, object]) -> str:
    from starfile.writer import StarWriter

    # StarWriter.to_string() starts with a time-stamped comment; leave it out so the same
    # regions always give the same bytes (cache keys and diffs stay stable).
    writer = StarWriter(dict(blocks), float_format="%.6f", separator="\t", na_rep="<NA>")
    return "".join(line + "\n" for line in writer.data_block_generator())
