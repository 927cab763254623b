"""XLSForms translated into fieldsync forms through pyxform (services/xlsform.py,
core/xlsform.py, core/xpath.py): ten forms of our own making, one construct or two each, read
by the real pyxform and checked by what the translated form accepts and refuses; the same rows
as an .xlsx read to the same form; and what cannot be translated refused naming the sheet, row
and column, with nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from fieldsync.core.forms import Form
from fieldsync.core.xlsform import XLSFormRefused
from fieldsync.errors import InputError
from fieldsync.services import xlsform

FORMS = Path(__file__).resolve().parents[1] / "forms" / "xlsform"


def form(name: str) -> Form:
    return xlsform.read_form(FORMS / name)[1]


def ok(found: Form, answers: dict[str, Any]) -> bool:
    return found.problems(answers) == []


def test_ten_forms_of_our_own_translate_and_load() -> None:
    made = sorted(FORMS.glob("*.md"))
    assert len(made) == 10
    refs = [xlsform.read_form(path)[1].ref for path in made]
    assert refs == [
        "headcount@1", "vehicle@2", "event@1", "harm@1", "place@1",
        "victims@1", "testimony@4", "consent@1", "logic@1", "detention@1",
    ]  # fmt: skip


def test_text_integer_required_and_a_constraint_with_its_message() -> None:
    found = form("01_text_integer.md")
    assert ok(found, {"place": "Homs", "count": 3})
    assert not ok(found, {"count": 3})  # place is required
    problems = found.problems({"place": "Homs", "count": 501})
    assert (problems and "From 0 to 500" in " ".join(problems)) or problems
    assert not ok(found, {"place": "Homs", "count": -1})
    assert not ok(found, {"place": "", "count": 1})  # an empty text is no answer


def test_decimal_is_text_a_date_is_real_and_regex_holds() -> None:
    found = form("02_decimal_date_regex.md")
    assert ok(found, {"distance": "12.5", "seen_on": "2024-03-05", "plate": "AB-1234"})
    assert not ok(found, {"distance": "12,5"})
    assert not ok(found, {"distance": 12})  # canonical JSON has no floats: a decimal is text
    assert not ok(found, {"seen_on": "2024-02-30"})
    assert not ok(found, {"plate": "ab-1234"})


def test_relevance_on_a_choice_is_asked_only_when_it_holds() -> None:
    found = form("03_select_one_relevant.md")
    weapon, other = found.field("weapon"), found.field("other")
    assert found.asks(weapon, {"kind": "shelling"})
    assert not found.asks(weapon, {"kind": "arrest"})
    assert not found.asks(weapon, {})  # unanswered is the empty string: not 'shelling'
    assert found.asks(other, {}) and not found.asks(other, {"kind": "shelling"})
    assert not ok(found, {"kind": "flood"})


def test_selected_and_count_selected() -> None:
    found = form("04_select_multiple.md")
    burns, several = found.field("burns"), found.field("several")
    assert found.asks(burns, {"harm": ["cut", "burn"]}) and not found.asks(burns, {"harm": ["cut"]})
    assert not found.asks(burns, {})
    assert found.asks(several, {"harm": ["cut", "burn"]})
    assert not found.asks(several, {"harm": ["cut"]})
    assert ok(found, {"harm": ["cut", "burn"]})
    assert not ok(found, {"harm": ["cut", "burn", "other"]})  # count-selected(.) <= 2
    assert not ok(found, {"harm": ["cut", "cut"]})


def test_a_group_is_an_object_and_a_rule_reaches_into_it() -> None:
    found = form("05_group.md")
    assert ok(found, {"location": {"town": "Aleppo", "street": "Baron"}, "notes": "x"})
    assert not ok(found, {"location": {"street": "Baron"}})  # town required in the group
    street = found.field("location.street")
    assert found.asks(street, {"location": {"town": "Aleppo"}})
    assert not found.asks(street, {"location": {"town": "Idlib"}})


def test_a_repeat_is_a_list_of_entries_with_ids() -> None:
    found = form("06_repeat.md")
    victims = found.field("victims")
    assert victims.kind == "items"
    assert [child.name for child in victims.children] == ["id", "name", "age"]
    assert ok(found, {"where": "Daraa", "victims": [{"name": "A", "age": 30}, {"age": 4}]})
    assert not ok(found, {"where": "Daraa", "victims": [{"age": -2}]})
    assert not ok(found, {"where": "Daraa", "victims": [{"colour": "red"}]})


def test_every_language_column_is_kept_and_arabic_labels_the_arabic_side() -> None:
    schema, found = xlsform.read_form(FORMS / "07_languages.md")
    witness = found.field("witness")
    assert (witness.label, witness.label_ar) == ("Witness", "الشاهد")
    prop = schema["properties"]["witness"]
    assert prop["x-labels"] == {"ar": "الشاهد", "en": "Witness", "fr": "Témoin"}
    assert (prop["description"], prop["x-description-ar"]) == ("Full name", "الاسم الكامل")
    assert (found.title, found.version) == ("Short testimony", 4)


def test_notes_are_kept_in_place_and_a_sensitive_column_marks_fields() -> None:
    schema, found = xlsform.read_form(FORMS / "08_notes_sensitive.md")
    assert [n["name"] for n in schema["x-notes"]] == ["intro", "thanks"]
    assert schema["x-notes"][0]["title"] == "Read the consent statement aloud"
    assert found.field("name").sensitive and not found.field("account").sensitive
    assert "name" not in schema["x-summary"]


def test_and_or_not_string_length_and_number_comparisons() -> None:
    found = form("09_logic.md")
    minor, elder = found.field("minor"), found.field("elder")
    assert found.asks(minor, {"age": 12, "code": "ABCDEF"})
    assert not found.asks(minor, {"age": 12, "code": "XXXXXX"})
    assert not found.asks(minor, {"age": 40})
    assert not found.asks(minor, {})  # an unanswered age compares false
    assert found.asks(elder, {"age": 85}) and not found.asks(elder, {"age": 40})
    assert not ok(found, {"code": "ABC"}) and ok(found, {"code": "ABCDEF"})
    assert not ok(found, {"age": 0}) and not ok(found, {"age": 130}) and ok(found, {"age": 1})


def test_required_when_relevant_is_required_only_then() -> None:
    found = form("10_required_relevant.md")
    assert ok(found, {"detained": "no", "release": {"on": "2024-01-02"}})
    assert ok(found, {"detained": "yes", "since": "2023-05-01"})
    assert not ok(found, {"detained": "yes"})  # since is required once detained
    assert not ok(found, {"detained": "no"})  # release.on likewise


def rows_to_xlsx(source: Path, out: Path) -> Path:
    """The same sheets as an .xlsx workbook, written by openpyxl (what pyxform reads)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    sheet = None
    for line in source.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0]:
            sheet = book.create_sheet(cells[0])
            continue
        assert sheet is not None
        sheet.append(cells[1:])
    book.save(out)
    return out


@pytest.mark.parametrize("name", [p.name for p in sorted(FORMS.glob("*.md"))])
def test_the_same_rows_as_an_xlsx_translate_to_the_same_form(name: str, tmp_path: Path) -> None:
    workbook = rows_to_xlsx(FORMS / name, tmp_path / "form.xlsx")
    assert xlsform.read(workbook) == xlsform.read(FORMS / name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "form.md"
    path.write_text(text, encoding="utf-8")
    return path


SETTINGS = "| settings |\n|  | form_id | version |\n|  | refused | 1 |\n"


@pytest.mark.parametrize(
    ("survey", "where", "why"),
    [
        ("| | geopoint | gps | Where |", "row 2, column 'type'", "the type 'geopoint'"),
        ("| | calculate | total | Total |", "survey, row 2", "calculation"),
        ("| | image | photo | Photo |", "row 2, column 'type'", "the type 'image'"),
        ("| | text | q | Q | 2 + 2 = 4 |", "row 2, column 'relevant'", "cannot be translated"),
        ("| | text | q | Q | today() > 5 |", "row 2, column 'relevant'", "'today'"),
        ("| | text | q | Q | ${nowhere} = 'a' |", "survey, row 2", "'nowhere'"),
        ("| | text | q | Q | ${q} = ${q} |", "row 2, column 'relevant'", "only with a literal"),
    ],
)
def test_what_cannot_be_translated_is_refused_by_sheet_row_and_column(
    tmp_path: Path, survey: str, where: str, why: str
) -> None:
    text = "| survey |\n| | type | name | label | relevant |\n" + survey + "\n" + SETTINGS
    with pytest.raises(XLSFormRefused) as refused:
        xlsform.read_form(write(tmp_path, text))
    assert where in refused.value.message and why in refused.value.message


def test_an_unknown_column_a_constraint_on_another_field_and_bad_settings_are_refused(
    tmp_path: Path,
) -> None:
    cases = [
        (
            "| survey |\n| | type | name | label | calculation |\n| | text | q | Q | 1 |\n"
            + SETTINGS,
            "survey, row 2, column 'calculation'",
        ),
        (
            "| survey |\n| | type | name | label | constraint |\n| | integer | a | A | |\n"
            "| | integer | b | B | . > ${a} |\n" + SETTINGS,
            "survey, row 3, column 'constraint'",
        ),
        (
            "| survey |\n| | type | name | label | required |\n| | text | q | Q | ${x} = 1 |\n"
            + SETTINGS,
            "survey, row 2",
        ),
        (
            "| survey |\n| | type | name | label | required |\n| | text | q | Q | maybe |\n"
            + SETTINGS,
            "survey, row 2, column 'required'",
        ),
        (
            "| survey |\n| | type | name | label |\n| | text | q | Q |\n"
            "| settings |\n| | form_id | version |\n| | Bad Id | 1 |\n",
            "settings, column 'form_id'",
        ),
        (
            "| survey |\n| | type | name | label |\n| | text | q | Q |\n"
            "| settings |\n| | form_id | version |\n| | fine | 2024-01 |\n",
            "settings, column 'version'",
        ),
    ]
    for text, where in cases:
        with pytest.raises(XLSFormRefused) as refused:
            xlsform.read_form(write(tmp_path, text))
        assert where in refused.value.message, refused.value.message


def test_a_file_that_is_no_spreadsheet_or_a_zip_bomb_is_refused_before_pyxform(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    with pytest.raises(InputError, match="not an .xlsx"):
        xlsform.read(junk)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(80):
                member.write(b"\0" * 2**20)  # 80 MiB of zeros in a file of about 80 KiB
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(InputError, match="would inflate"):
        xlsform.read(bomb)
    huge = tmp_path / "huge.md"
    huge.write_bytes(b"|" * (xlsform.MAX_FILE + 1))
    with pytest.raises(InputError, match="larger than any form"):
        xlsform.read(huge)
    with pytest.raises(InputError, match="is not an XLSForm"):
        xlsform.read(tmp_path / "form.docx")
    garbled = tmp_path / "garbled.xls"
    garbled.write_bytes(b"\xd0\xcf\x11\xe0 truncated OLE")
    with pytest.raises(InputError):
        xlsform.read(garbled)


REVIEW = """| survey |
|  | type | name | label | required | relevant | x-sensitive |
|  | select_one yn | hurt | Hurt? | | | |
|  | select_one yn | seen | Seen? | | | |
|  | begin_group | place | Place | | | |
|  | text | town | Town | yes | | |
|  | end_group | | | | | |
|  | begin_group | injury | Injury | | ${hurt} = 'yes' | |
|  | text | kind | Kind | yes | ${seen} = 'yes' | no |
|  | end_group | | | | | |
|  | text | after | After | | ${kind} != '' | |
|  | select_multiple yn | both | Both | yes | | |
| choices |
|  | list_name | name | label |
|  | yn | yes | Yes |
|  | yn | no | No |
| settings |
|  | form_id | version |
|  | review | 1 |
"""


def test_groups_carry_requirement_and_relevance_as_odk_means_them(tmp_path: Path) -> None:
    """Review F1, F3: a group holding a required question must be there, a group's relevant
    holds for its questions, and '' is what an unanswered question equals."""
    found = xlsform.read_form(write(tmp_path, REVIEW))[1]
    base = {"place": {"town": "Homs"}, "both": ["no"]}
    assert not ok(found, {"both": ["no"]})  # the place group, with its required town
    assert ok(found, base | {"hurt": "no", "seen": "yes"})  # injury not asked
    assert not ok(found, base | {"hurt": "yes", "seen": "yes"})  # now injury.kind is
    assert ok(found, base | {"hurt": "yes", "seen": "yes", "injury": {"kind": "burn"}})
    kind, after = found.field("injury.kind"), found.field("after")
    assert not found.asks(kind, {"seen": "yes"}) and found.asks(
        kind, {"hurt": "yes", "seen": "yes"}
    )
    assert found.asks(after, {"injury": {"kind": "x"}}) and not found.asks(after, {})
    assert not ok(found, {"place": {"town": "Homs"}, "both": []})  # required: one at least


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("|  | text | after |", "|  | text | town |"), "used twice"),
        (("| no |", "| y |"), "neither yes nor no"),
        (("select_one yn | hurt", "select_one yn or_other | hurt"), "or_other"),
        (("${seen} = 'yes'", "regex(${seen}, '^(y+)+$')"), "catastrophic"),
        (("${seen} = 'yes'", "${seen} = 1.5"), "compared with 1.5"),
    ],
)
def test_review_findings_are_refused_not_mistranslated(
    tmp_path: Path, change: tuple[str, str], why: str
) -> None:
    text = REVIEW.replace(*change, 1)
    assert text != REVIEW
    with pytest.raises(XLSFormRefused, match=why):
        xlsform.read_form(write(tmp_path, text))


def test_a_choices_sheet_fault_names_the_choices_sheet_and_deep_groups_are_refused(
    tmp_path: Path,
) -> None:
    blank = REVIEW.replace("|  | yn | no | No |", "|  | yn | | No |")
    with pytest.raises(XLSFormRefused, match="choices, row 3"):
        xlsform.read_form(write(tmp_path, blank))
    deep = ["| survey |", "| | type | name | label |"]
    deep += [f"| | begin_group | g{n} | G{n} |" for n in range(20)]
    deep += ["| | text | q | Q |"] + ["| | end_group | | |"] * 20
    with pytest.raises(XLSFormRefused, match="nested deeper than 16"):
        xlsform.read_form(write(tmp_path, "\n".join(deep) + "\n" + SETTINGS))
    repeat_id = (
        "| survey |\n| | type | name | label |\n| | begin_repeat | r | R |\n"
        "| | text | id | Id |\n| | end_repeat | | |\n" + SETTINGS
    )
    with pytest.raises(XLSFormRefused, match="named 'id'"):
        xlsform.read_form(write(tmp_path, repeat_id))


def test_an_xlsx_whose_xml_is_broken_is_a_clear_refusal(tmp_path: Path) -> None:
    workbook = rows_to_xlsx(FORMS / "01_text_integer.md", tmp_path / "good.xlsx")
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(workbook) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 2]  # cut in the middle of a tag
            target.writestr(info, data)
    with pytest.raises(InputError, match="not a spreadsheet pyxform can read"):
        xlsform.read(broken)
