"""Cached values for formula cells: every reader (pandas, openpyxl ``data_only``) sees the numbers."""

from __future__ import annotations

from pathlib import Path


def add_cached_values(path: Path, cached: dict[int, dict[str, float]]) -> None:
    """Give each formula cell of worksheet i (openpyxl's ``xl/worksheets/sheet{i}.xml``) its computed value.

    openpyxl writes a formula cell as ``<c r="F2" ...><f>...</f><v />``; the empty ``<v />`` becomes
    ``<v>value</v>`` (SpreadsheetML's cached result, ECMA-376 Part 1 §18.3.1.96). Excel and LibreOffice still
    recalculate (openpyxl sets fullCalcOnLoad); pandas and openpyxl ``data_only=True`` read the cached value."""
    import re
    import zipfile

    cell = re.compile(rb'(<c r="([A-Z]+[0-9]+)"[^>]*><f>[^<]*</f>)<v\s*/>')
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    names = {f"xl/worksheets/sheet{i}.xml": values for i, values in cached.items()}
    missing = set(names) - {info.filename for info, _ in members}
    if missing:
        raise RuntimeError(f"xlsx layout changed: no {', '.join(sorted(missing))}")  # openpyxl upgrade: a bug

    def fill(values: dict[str, float]):
        def sub(m: re.Match[bytes]) -> bytes:
            v = values.get(m.group(2).decode("ascii"))
            return m.group(0) if v is None else m.group(1) + b"<v>" + repr(v).encode("ascii") + b"</v>"
        return sub

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            if info.filename in names:
                data = cell.sub(fill(names[info.filename]), data)
            z.writestr(info, data)
