"""Medication safety: the interaction table, and the check of a prescription's medications against it and the patient's allergies.

Names are matched as generic names, case-insensitively; brand names are not mapped. A strength and what follows
it ("simvastatin 20 mg tablets"), and a trailing salt or form word ("diclofenac sodium", "amoxicillin capsules"),
are set aside. A combination product matches each ingredient: written with "/", "+", ",", "-", "and" or "with"
between them, or under a name the table's synonyms expand ("co-trimoxazole"). An allergy is free text: every
drug or group name it mentions counts ("Penicillin allergy (anaphylaxis)").

Severe findings (contraindicated or major interactions, and every allergy to the drug, its group or a member of
its group) block issue unless the doctor overrides them with a reason. A cross-reactivity between allergy groups
carries the table's own severity: a penicillin allergy against a cephalosporin is moderate, shown and recorded but
not blocking, because cross-reactivity is low and most penicillin allergy labels are not true allergy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.shared import ConflictError


class Severity(StrEnum):
    CONTRAINDICATED = "contraindicated"
    MAJOR = "major"
    MODERATE = "moderate"
    MINOR = "minor"


SEVERE = frozenset({Severity.CONTRAINDICATED, Severity.MAJOR})
CLASS_PREFIX = "class:"


class FindingKind(StrEnum):
    INTERACTION = "interaction"
    ALLERGY = "allergy"


class InvalidTableError(ValueError):
    """Raised when an interaction table's content is malformed."""


class CheckerUnavailableError(Exception):
    """Raised when the safety check cannot run (no readable table, or the patient's allergies cannot be read).

    It never lets an issue through: the command fails and nothing is recorded.
    """

    code = "checker_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InteractionBlockedError(ConflictError):
    """Raised when a prescription with severe findings is issued without an override reason."""

    code = "interaction_blocked"


_SPACES = re.compile(r"\s+")
_INGREDIENT_SEPARATORS = re.compile(r"\s*[/+,;()\[\]]\s*|\s+-\s+|(?<=\w)-(?=\w)|\s+(?:and|with|&)\s+")
_STRENGTH = re.compile(r"\s+[0-9.,]*[0-9].*$")
_WORDS = re.compile(r"[^\W_][\w-]*")
MIN_NAME_LENGTH = 3
LONGEST_NAME_WORDS = 4
QUALIFIERS = frozenset(
    """
    sodium potassium calcium magnesium hydrochloride hcl hydrobromide sulfate sulphate bisulfate phosphate citrate
    carbonate acetate maleate mesylate mesilate besylate besilate tartrate bitartrate succinate fumarate hyclate
    dihydrate monohydrate trihydrate anhydrous chloride bromide disodium
    tablet tablets capsule capsules injection solution suspension syrup elixir cream ointment gel drops patch
    patches inhaler oral er sr xl xr mr cr la
    """.split()
)


def normalise(name: str) -> str:
    return _SPACES.sub(" ", name.strip()).casefold()


def _base(part: str) -> str:
    """A name without its strength and what follows it, and without trailing salt or form words."""
    words = _STRENGTH.sub("", part).split(" ")
    while len(words) > 1 and words[-1] in QUALIFIERS:
        words.pop()
    return " ".join(words).strip()


def ingredients(name: str) -> frozenset[str]:
    """The normalised name and, for a combination product, each of its ingredients, each also without strength or salt."""
    whole = normalise(name)
    found = {whole}
    for part in (whole, *_INGREDIENT_SEPARATORS.split(whole)):
        for candidate in (part.strip(), _base(part.strip())):
            if len(candidate) >= MIN_NAME_LENGTH:
                found.add(candidate)
    return frozenset(found)


def mentioned(text: str) -> frozenset[str]:
    """Every run of up to four words of a free text ("penicillin allergy (rash)"), and its ingredients."""
    words = _WORDS.findall(normalise(text))
    runs = {
        " ".join(words[start : start + length])
        for start in range(len(words))
        for length in range(1, LONGEST_NAME_WORDS + 1)
        if start + length <= len(words)
    }
    return ingredients(text) | frozenset(run for run in runs if len(run) >= MIN_NAME_LENGTH)


@dataclass(frozen=True)
class CrossReactivity:
    """An allergy to one group meets the drugs of another group: with its own severity, effect and sources."""

    group: str
    severity: Severity
    effect: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DrugGroup:
    """A named set of generic names: an interaction class, or an allergy group with the words that name it."""

    key: str
    label: str
    members: frozenset[str]
    terms: frozenset[str] = frozenset()
    sources: tuple[str, ...] = ()
    cross_reactivity: tuple[CrossReactivity, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """Every name an allergy may give the group by: its key, its terms and its members."""
        return self.members | self.terms | {normalise(self.key)}


@dataclass(frozen=True)
class InteractionRule:
    a: str
    b: str
    a_members: frozenset[str]
    b_members: frozenset[str]
    severity: Severity
    effect: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    drugs: tuple[str, ...]
    effect: str
    sources: tuple[str, ...]
    rule: str
    allergy: str | None = None

    @property
    def severe(self) -> bool:
        return self.severity in SEVERE

    @property
    def key(self) -> tuple[str, ...]:
        """What makes a hazard the same hazard across checks and table versions."""
        return (self.kind.value, *sorted(self.drugs), self.allergy or "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "severe": self.severe,
            "drugs": list(self.drugs),
            "effect": self.effect,
            "sources": list(self.sources),
            "rule": self.rule,
            "allergy": self.allergy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            kind=FindingKind(data["kind"]),
            severity=Severity(data["severity"]),
            drugs=tuple(data["drugs"]),
            effect=data["effect"],
            sources=tuple(data["sources"]),
            rule=data["rule"],
            allergy=data.get("allergy"),
        )


@dataclass(frozen=True)
class SafetyCheck:
    """What one run of the checker saw and found: the table version, the medications, the allergies considered."""

    table_version: str
    medications: tuple[str, ...]
    allergies_checked: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def severe(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severe)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table_version": self.table_version,
            "medications": list(self.medications),
            "allergies_checked": list(self.allergies_checked),
            "findings": [f.as_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SafetyCheck:
        return cls(
            table_version=data["table_version"],
            medications=tuple(data["medications"]),
            allergies_checked=tuple(data["allergies_checked"]),
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
        )

    def same_inputs(self, other: SafetyCheck) -> bool:
        return (
            self.table_version == other.table_version
            and sorted(self.medications) == sorted(other.medications)
            and sorted(self.allergies_checked) == sorted(other.allergies_checked)
        )


@dataclass(frozen=True)
class InteractionTable:
    version: str
    classes: dict[str, DrugGroup]
    rules: tuple[InteractionRule, ...]
    allergy_groups: dict[str, DrugGroup]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    synonyms: dict[str, frozenset[str]] = field(default_factory=dict)

    def ingredients(self, name: str) -> frozenset[str]:
        """The name's ingredients, with those of every synonym among them ("co-amoxiclav": amoxicillin, clavulanic acid)."""
        return self.expand(ingredients(name))

    def expand(self, names: frozenset[str]) -> frozenset[str]:
        expanded = set(names)
        for name in names:
            for ingredient in self.synonyms.get(name, ()):
                expanded |= ingredients(ingredient)
        return frozenset(expanded)

    @classmethod
    def from_dict(cls, data: Any) -> InteractionTable:
        """Validates and reads a table; a malformed table raises InvalidTableError naming what is wrong."""
        if not isinstance(data, dict):
            raise InvalidTableError("the table must be a JSON object")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            raise InvalidTableError("the table has no version")
        sources = data.get("sources")
        if not isinstance(sources, dict) or not all(
            isinstance(s, dict) and isinstance(s.get("citation"), str) and s["citation"].strip() for s in sources.values()
        ):
            raise InvalidTableError("sources must map ids to objects with a citation")
        classes = {key: _group(key, value, sources, with_terms=False) for key, value in _mapping(data, "classes").items()}
        raw_groups = _mapping(data, "allergy_groups")
        allergy_groups = {key: _group(key, value, sources, with_terms=True, known_groups=raw_groups) for key, value in raw_groups.items()}
        pairs = data.get("pairs")
        if not isinstance(pairs, list) or not pairs:
            raise InvalidTableError("the table has no pairs")
        rules = tuple(_rule(index, pair, classes, sources) for index, pair in enumerate(pairs))
        synonyms = data.get("synonyms", {})
        if not isinstance(synonyms, dict):
            raise InvalidTableError("synonyms must be an object")
        expansions = {normalise(name): _names(value, f"synonyms.{name}") for name, value in synonyms.items()}
        return cls(version.strip(), classes, rules, allergy_groups, {k: dict(v) for k, v in sources.items()}, expansions)


def _mapping(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise InvalidTableError(f"{name} must be an object")
    return value


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidTableError(f"{where} must be a non-empty list of names")
    return frozenset(normalise(v) for v in value)


def _sources(value: Any, known: dict[str, Any], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v in known for v in value):
        raise InvalidTableError(f"{where} must cite at least one source listed in sources")
    return tuple(value)


def _group(
    key: str, value: Any, sources: dict[str, Any], *, with_terms: bool, known_groups: dict[str, Any] | None = None
) -> DrugGroup:
    where = f"group {key}"
    if not isinstance(value, dict) or not isinstance(value.get("label"), str):
        raise InvalidTableError(f"{where} needs a label and members")
    members = _names(value.get("members"), f"{where} members")
    if not with_terms:
        return DrugGroup(key, value["label"], members)
    terms = _names(value.get("terms"), f"{where} terms")
    crosses = value.get("cross_reactivity", [])
    if not isinstance(crosses, list):
        raise InvalidTableError(f"{where} cross_reactivity must be a list")
    return DrugGroup(
        key,
        value["label"],
        members,
        terms,
        _sources(value.get("sources"), sources, f"{where} sources"),
        tuple(_cross(f"{where} cross_reactivity[{i}]", c, known_groups or {}, sources) for i, c in enumerate(crosses)),
    )


def _cross(where: str, value: Any, groups: dict[str, Any], sources: dict[str, Any]) -> CrossReactivity:
    if not isinstance(value, dict) or value.get("group") not in groups:
        raise InvalidTableError(f"{where} must name another allergy group")
    try:
        severity = Severity(value.get("severity"))
    except ValueError:
        raise InvalidTableError(f"{where}.severity must be one of {', '.join(Severity)}") from None
    effect = value.get("effect")
    if not isinstance(effect, str) or not effect.strip():
        raise InvalidTableError(f"{where} needs an effect")
    return CrossReactivity(value["group"], severity, effect, _sources(value.get("sources"), sources, f"{where}.sources"))


def _side(value: Any, classes: dict[str, DrugGroup], where: str) -> tuple[str, frozenset[str]]:
    if not isinstance(value, str) or not value.strip():
        raise InvalidTableError(f"{where} must name a drug or a class")
    if value.startswith(CLASS_PREFIX):
        group = classes.get(value[len(CLASS_PREFIX) :])
        if group is None:
            raise InvalidTableError(f"{where} names an unknown class {value}")
        return value, group.members
    return value, frozenset({normalise(value)})


def _rule(index: int, pair: Any, classes: dict[str, DrugGroup], sources: dict[str, Any]) -> InteractionRule:
    where = f"pairs[{index}]"
    if not isinstance(pair, dict):
        raise InvalidTableError(f"{where} must be an object")
    a, a_members = _side(pair.get("a"), classes, f"{where}.a")
    b, b_members = _side(pair.get("b"), classes, f"{where}.b")
    try:
        severity = Severity(pair.get("severity"))
    except ValueError:
        raise InvalidTableError(f"{where}.severity must be one of {', '.join(Severity)}") from None
    effect = pair.get("effect")
    if not isinstance(effect, str) or not effect.strip():
        raise InvalidTableError(f"{where} needs an effect")
    return InteractionRule(a, b, a_members, b_members, severity, effect, _sources(pair.get("sources"), sources, f"{where}.sources"))


def check(table: InteractionTable, medications: Iterable[str], allergies: Iterable[str]) -> SafetyCheck:
    """Every interaction between two of the medications, and every medication the patient is allergic to.

    An allergy entry matches a medication when it names it, names its allergy group ("penicillin",
    "sulfa"), or names another member of its group (allergic to amoxicillin: every penicillin).
    """
    names = sorted({normalise(m) for m in medications if m.strip()})
    allergy_names = sorted({normalise(a) for a in allergies if isinstance(a, str) and a.strip()})
    found: dict[tuple[str, ...], Finding] = {}
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            for finding in _interactions(table, first, second):
                found.setdefault(finding.key + (finding.rule,), finding)
    for name in names:
        for allergy in allergy_names:
            finding = _allergy(table, name, allergy)
            if finding is not None:
                found.setdefault(finding.key, finding)
    order = list(Severity)
    findings = sorted(found.values(), key=lambda f: (order.index(f.severity), f.kind.value, f.drugs, f.allergy or ""))
    return SafetyCheck(table.version, tuple(names), tuple(allergy_names), tuple(findings))


def _interactions(table: InteractionTable, first: str, second: str) -> Iterable[Finding]:
    x, y = table.ingredients(first), table.ingredients(second)
    for rule in table.rules:
        if (x & rule.a_members and y & rule.b_members) or (y & rule.a_members and x & rule.b_members):
            yield Finding(
                FindingKind.INTERACTION, rule.severity, (first, second), rule.effect, rule.sources, f"{rule.a} + {rule.b}"
            )


def _allergy(table: InteractionTable, name: str, allergy: str) -> Finding | None:
    parts = table.ingredients(name)
    allergens = table.expand(mentioned(allergy))
    if parts & allergens:
        return Finding(FindingKind.ALLERGY, Severity.CONTRAINDICATED, (name,), f"The patient is allergic to {allergy}.", (), "allergy: same drug", allergy)
    for group in table.allergy_groups.values():
        if not parts & group.members:
            continue
        if allergens & (group.terms | {normalise(group.key)}):
            reason = f"{name} is one of the {group.label}, to which the patient is allergic."
        elif allergens & group.members:
            reason = f"{name} belongs with {allergy} to the {group.label} (class cross-reactivity)."
        else:
            continue
        return Finding(FindingKind.ALLERGY, Severity.CONTRAINDICATED, (name,), reason, group.sources, f"allergy group: {group.key}", allergy)
    for allergen_group in table.allergy_groups.values():
        if not allergens & allergen_group.names:
            continue
        for cross in allergen_group.cross_reactivity:
            if parts & table.allergy_groups[cross.group].members:
                rule = f"allergy cross-reactivity: {allergen_group.key} -> {cross.group}"
                return Finding(FindingKind.ALLERGY, cross.severity, (name,), cross.effect, cross.sources, rule, allergy)
    return None
