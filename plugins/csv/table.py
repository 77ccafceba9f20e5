"""Reading CSV tables strictly, for the series and tabular domains.

A table is a header row and data rows of the same length. Every problem is one `GenError` that
names the file, the line and the column: a ragged row, a value that is not a number in a numeric
column, an unknown column name. Empty cells (and NA, NaN, null) are missing values, which the
caller's own policy handles; nothing is fixed silently here.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gencore.errors import GenError

MISSING = {"", "na", "nan", "null", "none", "n/a", "?"}


@dataclass
class Table:
    where: str  # the file (or builtin name) for error messages
    header: list[str]
    rows: list[list[str]]

    def __len__(self) -> int:
        return len(self.rows)

    def index(self, name: str, option: str) -> int:
        if name in self.header:
            return self.header.index(name)
        shown = ", ".join(self.header[:20]) + (", ..." if len(self.header) > 20 else "")
        raise GenError(f"no column {name!r} in {self.where} (its columns: {shown})", where=option,
                       hint="use a name from the header row, spelt exactly")

    def text(self, column: int) -> list[str]:
        return [row[column].strip() for row in self.rows]

    def numbers(self, column: int) -> np.ndarray:
        """One column as float64, NaN where the cell is missing; any other text is an error."""
        out = np.empty(len(self.rows), dtype=np.float64)
        for i, row in enumerate(self.rows):
            cell = row[column].strip()
            if cell.lower() in MISSING:
                out[i] = np.nan
                continue
            try:
                out[i] = float(cell)
            except ValueError:
                raise GenError(f"line {i + 2}, column {self.header[column]!r}: {cell[:40]!r} is not a number",
                               where=self.where, hint="fix the value, leave the cell empty for a missing value, "
                               "or declare the column categorical / leave it out of --columns") from None
            if not np.isfinite(out[i]):
                raise GenError(f"line {i + 2}, column {self.header[column]!r}: {cell!r} is not a finite number",
                               where=self.where, hint="leave the cell empty for a missing value")
        return out


def parse_table(text: str, where: str) -> Table:
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise GenError("the file is empty", where=where, hint="give a CSV with a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise GenError(f"the header names column {dup!r} twice", where=where, hint="give every column its own name")
    body = rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise GenError(f"line {i + 2} has {len(row)} fields but the header has {len(header)} (a ragged CSV)",
                           where=where, hint="every row needs one value per header column; quote values with commas")
    if not body:
        raise GenError("the file has a header but no data rows", where=where)
    return Table(where, header, body)


def read_table(path: Path) -> Table:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GenError("no such file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenError(f"cannot read the file ({exc})", where=str(path), hint="give a UTF-8 CSV file") from None
    return parse_table(text, str(path))


def column_list(text: str | None) -> list[str]:
    """`--columns a,b` -> ["a", "b"]; None or empty -> []."""
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def label_values(table: Table, column: int) -> np.ndarray:
    """A 0/1 label column (also true/false, yes/no); anything else is an error."""
    out = np.zeros(len(table), dtype=np.int64)
    for i, cell in enumerate(table.text(column)):
        low = cell.lower()
        if low in ("1", "1.0", "true", "yes"):
            out[i] = 1
        elif low not in ("0", "0.0", "false", "no", ""):
            raise GenError(f"line {i + 2}, column {table.header[column]!r}: {cell[:40]!r} is not a 0/1 label",
                           where=table.where, hint="labels are 1 (anomaly) or 0 (normal)")
    return out
