"""Reading an XLSForm (.xlsx, .xls, .csv or .md) with pyxform, then translating it into a
fieldsync form (core/xlsform.py). A file that is not a spreadsheet, or one that would inflate
far past its size (a zip bomb), is refused before pyxform opens it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

from fieldsync.core import xlsform
from fieldsync.core.forms import Form, load
from fieldsync.core.xlsform import Sheets, XLSFormRefused
from fieldsync.errors import InputError, MalformedData, OutputPathError
from fieldsync.store import files

SUFFIXES = (".xlsx", ".xls", ".csv", ".md")
MAX_FILE = 10 * 1024 * 1024
MAX_INFLATED = 64 * 1024 * 1024  # what an .xlsx's parts may inflate to, all together
MAX_RATIO = 100  # and how far one part may inflate


def read(path: Path) -> dict[str, Any]:
    """The form schema an XLSForm file translates to; ``XLSFormRefused`` or ``InputError``
    saying what is wrong, and where."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{str(path)!r} is not an XLSForm fieldsync reads ({', '.join(SUFFIXES)})")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    if size > MAX_FILE:
        raise InputError(f"{str(path)!r} is larger than any form ({MAX_FILE // 2**20} MiB)")
    if suffix == ".xlsx":
        _refuse_bombs(path)
    sheets = _sheets(path, suffix)
    return xlsform.translate(sheets)


def read_form(path: Path) -> tuple[dict[str, Any], Form]:
    """The schema and the form it loads as (the check every form passes)."""
    schema = read(path)
    try:
        return schema, load(schema)
    except MalformedData as exc:
        raise XLSFormRefused(
            f"the form translated from {str(path)!r} is not one fieldsync can use: {exc.message}"
        ) from exc


def _refuse_bombs(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(
            f"{str(path)!r} is not an .xlsx spreadsheet (it is no ZIP archive)"
        ) from exc
    total = sum(info.file_size for info in infos)
    swollen = [
        info.filename
        for info in infos
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**20
    ]
    if total > MAX_INFLATED or swollen:
        raise InputError(
            f"{str(path)!r} would inflate to {total // 2**20} MiB"
            + (f" ({swollen[0]} alone {MAX_RATIO}× its size)" if swollen else "")
            + ": no form is that large; nothing was read"
        )


def _sheets(path: Path, suffix: str) -> Sheets:
    from pyxform import xls2json, xls2json_backends
    from pyxform.errors import PyXFormError

    readers = {
        ".xlsx": xls2json_backends.xlsx_to_dict,
        ".xls": xls2json_backends.xls_to_dict,
        ".csv": xls2json_backends.csv_to_dict,
        ".md": xls2json_backends.md_to_dict,
    }
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            rows = readers[suffix](str(path))
            survey = xls2json.parse_file_to_json(str(path), warnings=[])
    except PyXFormError as exc:  # its own words, with its row as ours reads: SHEET, row N
        said = str(exc)
        named = re.search(r"On the '([a-z_]+)' sheet", said)
        sheet = named[1] if named else "survey"
        said = re.sub(r"\[row : ([0-9]+)\]", rf"{sheet}, row \1:", said)
        raise XLSFormRefused(f"{said} (as pyxform read {path.name}); nothing was imported") from exc
    except RecursionError as exc:
        raise XLSFormRefused(f"{path.name} nests its groups too deep for any form") from exc
    except Exception as exc:  # a reader's fault on a hostile file is a refusal, not a crash
        raise InputError(
            f"{str(path)!r} is not a spreadsheet pyxform can read ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from exc
    return Sheets(
        survey=survey,
        rows={k: v for k, v in rows.items() if isinstance(v, list)},
        exact_rows=suffix != ".csv",  # pyxform's CSV reader drops blank rows
    )


def check_target(out: Path, force: bool) -> None:
    """Refuse an output path before any work is done."""
    if out.suffix.lower() != ".json":
        raise OutputPathError(f"{str(out)!r} should end in .json")
    if not out.parent.is_dir():
        raise OutputPathError(f"the folder {str(out.parent)!r} does not exist")
    if out.exists() and not force:
        raise OutputPathError(f"{str(out)!r} already exists", hint="Use --force to replace it.")


def write_schema(out: Path, schema: dict[str, Any]) -> None:
    text = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
    try:
        files.write_atomic(out, text.encode("utf-8"))
    except OSError as exc:
        raise OutputPathError(f"cannot write {str(out)!r}: {exc.strerror}") from exc
