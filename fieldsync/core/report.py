"""Monthly tallies from the records an administrator holds (docs/reports.md).

Pure: it takes each record's current answers and returns the tallies. The counting rules are
written down in docs/reports.md; in short:

- an incident's month is the month of its incident date, never the day it was recorded;
- every record counts in exactly one perpetrator row and one governorate row, so each
  breakdown adds up to its total. An attribution "joint, undetermined" between parties of
  different main parties is a row of its own, never split and never counted twice;
- a killing-only incident counts its victim totals as killed, less listed individuals who were
  injured or detained; an incident that is neither killings nor arrests counts them as killed
  when ``victims.outcome`` says they were; any other counts only the individuals listed as dead;
- arrests: the same rule for arrest-only incidents, plus one person per disappearance record.

A record whose answers this module cannot count (a value that is not one of the form's choices,
a count that is not a whole number) is left out and listed with the reason, never guessed at.
Victims it cannot read as killed or held, and a breakdown larger than its total (stored by an
older version), are listed too: no victim is left out in silence, and no row shows more
children or women than people.

Kept whole: the counting rules above are one set that must add up (every breakdown to its
total); kept in one module, a rule and its exceptions are read side by side.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fieldsync.core.forms import get_path

# --- what the forms' choices mean for a report ------------------------------------------

KILLING = frozenset({"extrajudicial_killing", "death_under_torture", "massacre"})
ARREST = frozenset({"arbitrary_arrest", "enforced_disappearance"})
DEAD = frozenset({"killed", "died_under_torture"})
HELD = frozenset({"detained", "disappeared"})
OUTCOMES = ("killed", "injured", "unknown")  # victims.outcome: what happened to the totals
OUTLAWED_WEAPONS = ("cluster_munitions", "chemical_weapons", "barrel_bombs", "incendiary_weapons")

GOVERNORATES = (
    "damascus", "rif_dimashq", "aleppo", "idlib", "homs", "hama", "latakia", "tartus", "daraa",
    "as_suwayda", "quneitra", "deir_ez_zor", "raqqa", "al_hasakah",
)  # fmt: skip
FACILITIES = (
    "medical_facility", "school", "market", "place_of_worship", "power_station",
    "water_facility", "idp_camp", "bakery", "civil_defence_centre", "cultural_property",
)  # fmt: skip

NOT_IDENTIFIED = "not_identified"
# The main parties of a monthly report, in its order, with the form's parties they gather.
PARTY_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "syrian_regime": (
        "Syrian regime forces",
        ("regime_army", "regime_security", "regime_local_militias", "regime_foreign_militias"),
    ),
    "russian_forces": ("Russian forces", ("russian_forces",)),
    "iranian_backed_militias": ("Iranian-backed militias", ("iranian_backed_militias",)),
    "extremist_groups": ("Extremist groups", ("hts", "isis", "tip")),
    "armed_opposition": ("Armed opposition factions", ("armed_opposition",)),
    "sdf": ("Syrian Democratic Forces", ("sdf",)),
    "us_led_coalition": ("US-led coalition", ("us_led_coalition",)),
    "turkish_forces": ("Turkish forces", ("turkish_forces",)),
    "other_parties": (
        "Other parties",
        (
            "landmines_unknown_origin",
            "fires_unknown_source",
            "unidentified_bombing",
            "unknown_persons",
            NOT_IDENTIFIED,
        ),
    ),
}
GROUP_OF = {party: group for group, (_, parties) in PARTY_GROUPS.items() for party in parties}
PARTY_ORDER = {party: n for n, party in enumerate(GROUP_OF)}
FORM_PARTIES = tuple(party for party in GROUP_OF if party != NOT_IDENTIFIED)
OTHER_PARTIES = frozenset(PARTY_GROUPS["other_parties"][1])

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
SERIES_KEYS = (
    "killed",
    "children_killed",
    "women_killed",
    "died_under_torture",
    "massacres",
    "arrested",
    "facility_attacks",
    "weapon_attacks",
)


# --- input and output --------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One record as the report reads it: its current (provisional) answers."""

    record: str
    form: str  # form id: incident, disappearance (others are not counted)
    answers: dict[str, Any]
    in_conflict: bool = False


@dataclass(frozen=True)
class Period:
    """Inclusive dates; ``None`` on a side means open."""

    start: date | None = None
    end: date | None = None
    label: str = "all dates"

    @property
    def heading(self) -> str:
        """The report's first words: "Incidents dated 2024-03", "Incidents of all dates"."""
        if self.start is None and self.end is None:
            return f"Incidents of {self.label}"
        return f"Incidents dated {self.label}"

    @classmethod
    def month(cls, text: str) -> Period:
        found = MONTH.match(text.strip())
        if not found:
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        year, month = int(found[1]), int(found[2])
        last = calendar.monthrange(year, month)[1]
        return cls(date(year, month, 1), date(year, month, last), f"{year:04d}-{month:02d}")

    @classmethod
    def between(cls, start: date | None, end: date | None) -> Period:
        if start and end and end < start:
            raise ValueError("the period ends before it starts")
        if start is None and end is None:
            return cls()
        shown = f"{start.isoformat() if start else '…'} to {end.isoformat() if end else '…'}"
        return cls(start, end, shown)


@dataclass
class Row:
    """One line of a breakdown: its counts, and the finer rows it is made of."""

    key: str
    label: str
    counts: dict[str, int]
    rows: dict[str, Row] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"key": self.key, "label": self.label, **self.counts}
        if self.rows:
            value["rows"] = [self.rows[key].to_json() for key in sorted(self.rows)]
        return value


class Breakdown:
    """Counts by a key (one key per record, so the rows add up to the total). The fixed rows
    come first, in their order, zeros included; other rows follow by key."""

    def __init__(self, metrics: tuple[str, ...], fixed: Iterable[tuple[str, str]] = ()) -> None:
        self.metrics = metrics
        self.rows: dict[str, Row] = {key: self._row(key, label) for key, label in fixed}
        self.fixed = tuple(self.rows)

    def _row(self, key: str, label: str) -> Row:
        return Row(key, label, dict.fromkeys(self.metrics, 0))

    def add(
        self, key: str, label: str, counts: dict[str, int], sub: tuple[str, str] | None
    ) -> None:
        row = self.rows.setdefault(key, self._row(key, label))
        _add(row.counts, counts)
        if sub is not None:
            child = row.rows.setdefault(sub[0], self._row(*sub))
            _add(child.counts, counts)

    def ordered(self) -> list[Row]:
        extra = sorted(key for key in self.rows if key not in self.fixed)
        return [self.rows[key] for key in (*self.fixed, *extra)]

    def to_json(self) -> list[dict[str, Any]]:
        return [row.to_json() for row in self.ordered()]


@dataclass
class Section:
    """One part of the report: its totals and its breakdowns."""

    metrics: tuple[str, ...]
    totals: dict[str, int]
    breakdowns: dict[str, Breakdown]
    in_conflict: int = 0  # records in conflict counted here (with their provisional values)

    @classmethod
    def new(cls, metrics: tuple[str, ...], **fixed: Iterable[tuple[str, str]]) -> Section:
        return cls(
            metrics,
            dict.fromkeys(metrics, 0),
            {name: Breakdown(metrics, rows) for name, rows in fixed.items()},
        )

    def count(self, counts: dict[str, int], conflict: bool, **keys: tuple[str, str, Any]) -> None:
        _add(self.totals, counts)
        self.in_conflict += conflict
        for name, (key, label, sub) in keys.items():
            self.breakdowns[name].add(key, label, counts, sub)

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals,
            "records_in_conflict": self.in_conflict,
            **{f"by_{name}": breakdown.to_json() for name, breakdown in self.breakdowns.items()},
        }


@dataclass
class Report:
    period: Period
    governorate: str | None
    labels: dict[str, str]
    killings: Section
    arrests: Section
    facility_attacks: Section
    weapon_attacks: Section
    series: dict[str, dict[str, int]] = field(default_factory=dict)  # month -> SERIES_KEYS
    counted: int = 0  # records that count in at least one section
    in_conflict: list[str] = field(default_factory=list)  # ids of counted records in conflict
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (record, why)
    partly: list[tuple[str, str]] = field(default_factory=list)  # counted, less what and why
    uncertain: list[tuple[str, str]] = field(default_factory=list)  # dates only partly inside
    mixed: int = 0  # incidents with killings and arrests: counted by listed individuals only

    def label(self, key: str, *, short: bool = False) -> str:
        """The English label of a choice; ``short`` inside a main party's own row."""
        if key == NOT_IDENTIFIED:
            return "perpetrator not identified"
        full = label_of(self.labels, key)  # "Extremist groups: ISIS"
        return full.split(": ", 1)[-1] if short else full

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "fieldsync/report",
            "version": 1,
            "period": {
                "label": self.period.label,
                "from": self.period.start.isoformat() if self.period.start else None,
                "to": self.period.end.isoformat() if self.period.end else None,
            },
            "governorate": self.governorate,
            "records_counted": self.counted,
            "records_in_conflict": sorted(self.in_conflict),
            "killings": self.killings.to_json(),
            "arrests": self.arrests.to_json(),
            "facility_attacks": self.facility_attacks.to_json(),
            "weapon_attacks": self.weapon_attacks.to_json(),
            "monthly": [{"month": m, **self.series[m]} for m in sorted(self.series)],
            "mixed_incidents": self.mixed,
            "not_counted": [{"record": r, "reason": why} for r, why in self.excluded],
            "counted_in_part": [{"record": r, "reason": why} for r, why in self.partly],
            "dates_partly_in_period": [{"record": r, "date": d} for r, d in self.uncertain],
        }


# --- counting ----------------------------------------------------------------------------


class Uncountable(ValueError):
    """A record's answers cannot be counted as they stand (the message says why)."""


def tally(
    sources: Iterable[Source],
    period: Period | None = None,
    governorate: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Report:
    """Count ``sources`` that fall in ``period`` (and ``governorate``). ``labels``: the forms'
    English labels of their choices, for the rows (the choice itself where none is given)."""
    names = dict(labels or {})
    parties = [(key, label) for key, (label, _) in PARTY_GROUPS.items()]
    govs = [(g, label_of(names, g)) for g in GOVERNORATES]
    report = Report(
        period or Period(),
        governorate,
        names,
        killings=Section.new(
            ("killed", "children", "adult_women", "died_under_torture", "massacres", "incidents"),
            party=parties,
            governorate=govs,
        ),
        arrests=Section.new(
            ("arrested", "children", "adult_women", "records"), party=parties, governorate=govs
        ),
        facility_attacks=Section.new(
            ("attacks",), facility=[(f, label_of(names, f)) for f in FACILITIES], party=parties
        ),
        weapon_attacks=Section.new(
            ("attacks",),
            weapon=[(w, label_of(names, w)) for w in OUTLAWED_WEAPONS],
            party=parties,
        ),
    )
    for source in sources:
        if source.form not in ("incident", "disappearance"):
            continue
        try:
            _count(report, source)
        except Uncountable as exc:
            report.excluded.append((source.record, str(exc)))
    return report


def _count(report: Report, source: Source) -> None:
    answers = source.answers
    gov = _choice(get_path(answers, ("location", "governorate")), GOVERNORATES, "governorate")
    if report.governorate is not None and gov != report.governorate:
        return
    day, precision = _date(answers)
    inside, month = _place(report, source.record, day, precision)
    if not inside:
        return
    if source.form == "incident":
        counted = _incident(report, source, gov, month)
    else:
        counted = _disappearance(report, source, gov, month)
    if counted:
        report.counted += 1
        if source.in_conflict:
            report.in_conflict.append(source.record)


def _incident(report: Report, source: Source, gov: str, month: str | None) -> bool:
    answers = source.answers
    violations = set(_strings(answers.get("violations"), "violations"))
    victims = answers.get("victims") or {}
    if not isinstance(victims, dict):
        raise Uncountable("victims is not a group of answers")
    people = _people(victims.get("individuals"))
    total, children, women = (_count_of(victims, k) for k in ("total", "children", "adult_women"))
    unnamed = (
        max(total - len(people), 0),
        max(children - sum(1 for p in people if p.child), 0),
        max(women - sum(1 for p in people if p.woman), 0),
    )
    killing, arrest = bool(violations & KILLING), bool(violations & ARREST)
    report.mixed += killing and arrest
    # Neither killings nor arrests (a landmine, an indiscriminate attack): the totals are the
    # killed only when the record says so; otherwise they are unread, and listed below.
    other = not killing and not arrest
    outcome = _choice(victims.get("outcome", "unknown"), OUTCOMES, "victims' outcome")
    all_killed = other and outcome == "killed"
    party = _attribution(report, answers.get("perpetrator"))
    where = (gov, report.label(gov), None)
    conflict = source.in_conflict
    series = report.series.setdefault(month, dict.fromkeys(SERIES_KEYS, 0)) if month else None
    counted = False

    dead = [p for p in people if p.status in DEAD]
    killed = _people_counts(dead, unnamed if (killing and not arrest) or all_killed else None)
    killed = _within_total(report, source.record, killed, "killed")
    torture = sum(1 for p in dead if p.status == "died_under_torture")
    if killing and not arrest and not violations & {"extrajudicial_killing", "massacre"}:
        torture += unnamed[0]  # an incident recorded only as a death under torture
    if killing or killed[0]:
        counts = {
            "killed": killed[0],
            "children": killed[1],
            "adult_women": killed[2],
            "died_under_torture": torture,
            "massacres": int("massacre" in violations),
            "incidents": 1,
        }
        report.killings.count(counts, conflict, party=party, governorate=where)
        if series is not None:
            _add(series, {"killed": killed[0], "children_killed": killed[1]})
            _add(series, {"women_killed": killed[2], "died_under_torture": torture})
            _add(series, {"massacres": counts["massacres"]})
        counted = True

    held = _people_counts(
        [p for p in people if p.status in HELD], unnamed if arrest and not killing else None
    )
    held = _within_total(report, source.record, held, "arrested")
    if arrest or held[0]:
        counts = {"arrested": held[0], "children": held[1], "adult_women": held[2], "records": 1}
        report.arrests.count(counts, conflict, party=party, governorate=where)
        if series is not None:
            series["arrested"] += held[0]
        counted = True

    if "attack_on_vital_facility" in violations:
        facility = _choice(answers.get("facility_type"), FACILITIES, "facility type")
        report.facility_attacks.count(
            {"attacks": 1}, conflict, facility=(facility, report.label(facility), None), party=party
        )
        if series is not None:
            series["facility_attacks"] += 1
        counted = True

    weapons = [w for w in _strings(answers.get("weapons"), "weapons") if w in OUTLAWED_WEAPONS]
    if weapons or "outlawed_weapon" in violations:
        # An attack is one row of the party breakdown; by weapon it counts under each weapon it
        # used, so that breakdown may add up to more than the number of attacks (docs).
        report.weapon_attacks.count({"attacks": 1}, conflict, party=party)
        for weapon in dict.fromkeys(weapons) or ("unspecified",):
            shown = "Weapon not specified" if weapon == "unspecified" else report.label(weapon)
            report.weapon_attacks.breakdowns["weapon"].add(weapon, shown, {"attacks": 1}, None)
        if series is not None:
            series["weapon_attacks"] += 1
        counted = True
    if other and not all_killed and unnamed[0] and not (counted and outcome == "injured"):
        why = _unread(report, violations, unnamed[0], outcome)
        (report.partly if counted else report.excluded).append((source.record, why))
    return counted


def _unread(report: Report, violations: set[str], victims: int, outcome: str) -> str:
    """Why the unnamed victims of an incident neither killings nor arrests were not counted."""
    kinds = " / ".join(report.label(v).lower() for v in sorted(violations)) or "no violation"
    if outcome == "injured":
        return f"{victims} victims ({kinds}), none killed: the report counts the killed only"
    return f"{victims} victims ({kinds}), not stated whether killed or injured"


def _within_total(
    report: Report, record: str, counts: tuple[int, ...], what: str
) -> tuple[int, ...]:
    """People, children, adult women; the breakdown dropped (and the record listed) when it is
    larger than its total, as an older version could store: a row must never show more
    children or women than people."""
    total, children, women = counts
    if children + women <= total:
        return counts
    report.partly.append(
        (
            record,
            f"its {what} break down into more than their total ({children} children and "
            f"{women} adult women of {total}): counted for the total only",
        )
    )
    return total, 0, 0


def _disappearance(report: Report, source: Source, gov: str, month: str | None) -> bool:
    answers = source.answers
    person = answers.get("person") or {}
    if not isinstance(person, dict):
        raise Uncountable("person is not a group of answers")
    one = _Person.of({**person, "status": "disappeared"})
    named = _choice(answers.get("perpetrator_party"), (*FORM_PARTIES, "unknown"), "perpetrator")
    parties = [] if named == "unknown" else [named]
    party = _attribution(
        report, {"parties": parties, "attribution": "confirmed" if parties else "unknown"}
    )
    counts = {
        "arrested": 1,
        "children": int(one.child),
        "adult_women": int(one.woman),
        "records": 1,
    }
    report.arrests.count(
        counts, source.in_conflict, party=party, governorate=(gov, report.label(gov), None)
    )
    if month is not None:
        report.series.setdefault(month, dict.fromkeys(SERIES_KEYS, 0))["arrested"] += 1
    return True


# --- attribution -------------------------------------------------------------------------


def _attribution(report: Report, perpetrator: object) -> tuple[str, str, tuple[str, str]]:
    """The (row, label, (sub-row, label)) a record counts under: exactly one of each."""
    if perpetrator is None:
        perpetrator = {}
    if not isinstance(perpetrator, dict):
        raise Uncountable("perpetrator is not a group of answers")
    kind = perpetrator.get("attribution", "unknown")
    kind = _choice(kind, ("confirmed", "likely", "joint_undetermined", "unknown"), "attribution")
    listed = _strings(perpetrator.get("parties"), "perpetrator parties")
    for party in listed:
        _choice(party, FORM_PARTIES, "perpetrator party")
    parties = sorted(set(listed), key=PARTY_ORDER.__getitem__)
    if kind == "unknown" and not (parties and set(parties) <= OTHER_PARTIES):
        parties = []  # not attributed: named parties were at most suspected
    if not parties:
        parties = [NOT_IDENTIFIED]
    groups = list(dict.fromkeys(GROUP_OF[p] for p in parties))
    joint = kind == "joint_undetermined" and len(parties) > 1
    names = " / ".join(report.label(p, short=len(groups) == 1) for p in parties)
    sub = (
        "+".join(parties),
        names
        if len(parties) == 1 or len(groups) > 1  # a joint row says "joint" itself
        else f"joint, undetermined: {names}"
        if joint
        else f"jointly: {names}",
    )
    if len(groups) == 1:
        return groups[0], PARTY_GROUPS[groups[0]][0], sub
    group_names = " / ".join(PARTY_GROUPS[g][0] for g in groups)
    if joint:
        return "joint:" + "+".join(groups), f"Joint, undetermined: {group_names}", sub
    return "jointly:" + "+".join(groups), f"Jointly: {group_names}", sub


# --- reading answers defensively ---------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    status: str
    child: bool  # under 18
    woman: bool  # female, 18 or older

    @classmethod
    def of(cls, value: object) -> _Person:
        if not isinstance(value, dict):
            raise Uncountable("an individual victim is not a group of answers")
        age = value.get("age")
        if age is not None and not _whole(age):
            raise Uncountable("an individual's age is not a whole number")
        status = value.get("status")
        if not isinstance(status, str):
            raise Uncountable("an individual victim has no status")
        adult = age is not None and age >= 18
        return cls(status, age is not None and age < 18, adult and value.get("sex") == "female")


def _people(value: object) -> list[_Person]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Uncountable("the list of individual victims is not a list")
    return [_Person.of(item) for item in value]


def _people_counts(people: list[_Person], unnamed: tuple[int, int, int] | None) -> tuple[int, ...]:
    listed = (len(people), sum(p.child for p in people), sum(p.woman for p in people))
    if unnamed is None:
        return listed
    return tuple(a + b for a, b in zip(listed, unnamed, strict=True))


def _date(answers: dict[str, Any]) -> tuple[date, str]:
    text = answers.get("date")
    try:
        if not isinstance(text, str) or len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise Uncountable("its date is not a date written YYYY-MM-DD") from exc
    precision = answers.get("date_precision", "exact")
    return day, _choice(precision, ("exact", "approximate", "month", "year"), "date precision")


def _place(report: Report, record: str, day: date, precision: str) -> tuple[bool, str | None]:
    """Whether the record falls wholly inside the period (one only partly inside is listed as
    uncertain, not counted), and its month in the series (None: known only to the year)."""
    if precision == "year":
        first, last = date(day.year, 1, 1), date(day.year, 12, 31)
    elif precision == "month":
        first = day.replace(day=1)
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    else:
        first = last = day
    start, end = report.period.start or date.min, report.period.end or date.max
    if last < start or first > end:
        return False, None
    if first < start or last > end:
        exact = precision in ("exact", "approximate")
        report.uncertain.append((record, day.isoformat() if exact else f"{day} ({precision})"))
        return False, None
    return True, None if precision == "year" else f"{day.year:04d}-{day.month:02d}"


def _choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, str | int) else type(value).__name__
        raise Uncountable(f"its {what} {str(shown)[:40]!r} is not one of the form's choices")
    return value


def _strings(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Uncountable(f"its {what} are not a list of choices")
    return value


def _count_of(victims: dict[str, Any], key: str) -> int:
    value = victims.get(key, 0)
    if not _whole(value) or value > 1_000_000:
        raise Uncountable(f"its number of victims ({key}) is not a whole number from 0")
    return int(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, n in counts.items():
        into[key] += n


def label_of(labels: Mapping[str, str], key: str) -> str:
    return labels.get(key) or key.replace("_", " ").capitalize()
