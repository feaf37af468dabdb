"""The safety check: interactions, allergies with class cross-reactivity, severity, the table's validation, and the shipped table."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from domain.medication_safety import (
    CheckerUnavailableError,
    FindingKind,
    InteractionTable,
    InvalidTableError,
    Severity,
    check,
    ingredients,
    normalise,
)
from infrastructure.interactions import FileInteractionTables, shipped_table

TABLE: dict[str, Any] = {
    "version": "test-1",
    "sources": {"s1": {"citation": "Source one."}, "s2": {"citation": "Source two."}},
    "classes": {
        "maois": {"label": "MAOIs", "members": ["phenelzine", "selegiline"]},
        "ssris": {"label": "SSRIs", "members": ["fluoxetine", "sertraline"]},
        "nsaids": {"label": "NSAIDs", "members": ["ibuprofen", "naproxen"]},
        "ppis": {"label": "PPIs", "members": ["omeprazole"]},
    },
    "pairs": [
        {"a": "class:maois", "b": "class:ssris", "severity": "contraindicated", "effect": "Serotonin syndrome.", "sources": ["s1"]},
        {"a": "warfarin", "b": "class:nsaids", "severity": "major", "effect": "Bleeding.", "sources": ["s2"]},
        {"a": "clopidogrel", "b": "class:ppis", "severity": "moderate", "effect": "Less antiplatelet effect.", "sources": ["s1"]},
        {"a": "paracetamol", "b": "caffeine", "severity": "minor", "effect": "Nothing much.", "sources": ["s1"]},
    ],
    "allergy_groups": {
        "penicillins": {"label": "penicillins", "terms": ["penicillin"], "members": ["amoxicillin", "flucloxacillin"], "sources": ["s2"]},
        "sulfonamides": {"label": "sulfonamide antibiotics", "terms": ["sulfa"], "members": ["sulfamethoxazole"], "sources": ["s2"]},
    },
}


def table(**changes: Any) -> InteractionTable:
    data = copy.deepcopy(TABLE)
    data.update(changes)
    return InteractionTable.from_dict(data)


def test_names_are_compared_case_insensitively_and_combinations_by_ingredient() -> None:
    assert normalise("  Warfarin   Sodium ") == "warfarin sodium"
    assert ingredients("Amoxicillin / Clavulanic acid") == {"amoxicillin / clavulanic acid", "amoxicillin", "clavulanic acid"}


def test_no_findings_for_unrelated_medications() -> None:
    result = check(table(), ["Paracetamol", "Amoxicillin"], [])
    assert result.findings == ()
    assert result.table_version == "test-1"
    assert result.medications == ("amoxicillin", "paracetamol")


def test_a_class_pair_is_found_whichever_side_each_drug_is_on() -> None:
    for order in (["fluoxetine", "phenelzine"], ["phenelzine", "fluoxetine"]):
        [finding] = check(table(), order, []).findings
        assert finding.kind == FindingKind.INTERACTION
        assert finding.severity == Severity.CONTRAINDICATED
        assert finding.drugs == ("fluoxetine", "phenelzine")
        assert finding.effect == "Serotonin syndrome."
        assert finding.sources == ("s1",)
        assert finding.severe


def test_a_drug_to_class_pair_is_found_and_is_severe_when_major() -> None:
    [finding] = check(table(), ["WARFARIN", "Naproxen"], []).findings
    assert finding.severity == Severity.MAJOR and finding.severe


def test_moderate_and_minor_interactions_are_found_but_not_severe() -> None:
    result = check(table(), ["clopidogrel", "omeprazole", "paracetamol", "caffeine"], [])
    assert [(f.severity, f.severe) for f in result.findings] == [(Severity.MODERATE, False), (Severity.MINOR, False)]
    assert result.severe == ()


def test_a_combination_product_interacts_through_its_ingredient() -> None:
    [finding] = check(table(), ["warfarin", "ibuprofen/famotidine"], []).findings
    assert finding.severity == Severity.MAJOR


def test_an_allergy_to_the_drug_itself_matches() -> None:
    [finding] = check(table(), ["Amoxicillin"], ["amoxicillin"]).findings
    assert finding.kind == FindingKind.ALLERGY and finding.severe and finding.allergy == "amoxicillin"


def test_an_allergy_named_by_its_group_matches_every_member() -> None:
    [finding] = check(table(), ["flucloxacillin"], ["Penicillin"]).findings
    assert finding.kind == FindingKind.ALLERGY
    assert finding.rule == "allergy group: penicillins"
    assert finding.sources == ("s2",)


def test_an_allergy_to_one_member_matches_the_others_class_cross_reactivity() -> None:
    [finding] = check(table(), ["flucloxacillin"], ["amoxicillin"]).findings
    assert "cross-reactivity" in finding.effect
    assert finding.severe


def test_an_allergy_matches_an_ingredient_of_a_combination() -> None:
    [finding] = check(table(), ["Amoxicillin/clavulanic acid"], ["penicillin"]).findings
    assert finding.drugs == ("amoxicillin/clavulanic acid",)


def test_an_unrelated_allergy_does_not_match() -> None:
    assert check(table(), ["amoxicillin"], ["sulfa", "latex", "peanuts"]).findings == ()


def test_the_check_records_the_allergies_it_considered() -> None:
    result = check(table(), ["amoxicillin"], ["Latex", "  sulfa "])
    assert result.allergies_checked == ("latex", "sulfa")


def test_findings_come_most_severe_first() -> None:
    result = check(table(), ["clopidogrel", "omeprazole", "phenelzine", "sertraline"], [])
    assert [f.severity for f in result.findings] == [Severity.CONTRAINDICATED, Severity.MODERATE]


def test_a_check_survives_a_round_trip_through_plain_values() -> None:
    result = check(table(), ["phenelzine", "sertraline", "amoxicillin"], ["penicillin"])
    assert type(result).from_dict(json.loads(json.dumps(result.as_dict()))) == result


@pytest.mark.parametrize(
    "change",
    [
        {"version": ""},
        {"pairs": []},
        {"pairs": [{"a": "class:nope", "b": "x", "severity": "major", "effect": "e", "sources": ["s1"]}]},
        {"pairs": [{"a": "a", "b": "b", "severity": "deadly", "effect": "e", "sources": ["s1"]}]},
        {"pairs": [{"a": "a", "b": "b", "severity": "major", "effect": "e", "sources": ["unknown"]}]},
        {"pairs": [{"a": "a", "b": "b", "severity": "major", "effect": "", "sources": ["s1"]}]},
        {"classes": {"x": {"label": "x", "members": []}}},
        {"allergy_groups": {"x": {"label": "x", "terms": ["x"], "members": ["y"], "sources": []}}},
        {"sources": {"s1": {"citation": ""}}},
    ],
)
def test_a_malformed_table_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidTableError):
        table(**change)


def test_the_shipped_table_loads_and_holds_the_well_known_severe_pairs() -> None:
    shipped = FileInteractionTables().current()
    severe_pairs = [
        ("warfarin", "ibuprofen", Severity.MAJOR),
        ("warfarin", "aspirin", Severity.MAJOR),
        ("sildenafil", "isosorbide mononitrate", Severity.CONTRAINDICATED),
        ("tadalafil", "nitroglycerin", Severity.CONTRAINDICATED),
        ("simvastatin", "clarithromycin", Severity.CONTRAINDICATED),
        ("lovastatin", "itraconazole", Severity.CONTRAINDICATED),
        ("simvastatin", "ketoconazole", Severity.CONTRAINDICATED),
        ("phenelzine", "sertraline", Severity.CONTRAINDICATED),
        ("tranylcypromine", "tramadol", Severity.CONTRAINDICATED),
        ("phenelzine", "meperidine", Severity.CONTRAINDICATED),
        ("methotrexate", "trimethoprim", Severity.MAJOR),
        ("oxycodone", "alprazolam", Severity.MAJOR),
        ("tizanidine", "ciprofloxacin", Severity.CONTRAINDICATED),
        ("tizanidine", "fluvoxamine", Severity.CONTRAINDICATED),
        ("lisinopril", "spironolactone", Severity.MAJOR),
        ("ramipril", "potassium chloride", Severity.MAJOR),
        ("lithium", "naproxen", Severity.MAJOR),
        ("clopidogrel", "omeprazole", Severity.MODERATE),
    ]
    for first, second, severity in severe_pairs:
        findings = check(shipped, [first, second], []).findings
        assert [f.severity for f in findings] == [severity], (first, second, findings)
    assert all(rule.sources for rule in shipped.rules)
    assert "phansalkar2012" in shipped.sources


def test_the_shipped_table_is_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'infrastructure = ["reference/*.json"]' in pyproject
    assert shipped_table().is_file()


def test_a_missing_table_file_makes_the_checker_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CheckerUnavailableError):
        FileInteractionTables(tmp_path / "absent.json").current()


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": "x"}), "\udcff"])
def test_a_corrupt_table_file_makes_the_checker_unavailable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "table.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(CheckerUnavailableError):
        FileInteractionTables(path).current()


def test_an_updated_table_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(TABLE))
    tables = FileInteractionTables(path)
    assert tables.current().version == "test-1"
    path.write_text(json.dumps({**TABLE, "version": "test-2", "description": "longer, so the size differs"}))
    assert tables.current().version == "test-2"


def shipped_findings(medications: list[str], allergies: list[str] = ()) -> list[tuple[str, str]]:  # type: ignore[assignment]
    result = check(FileInteractionTables().current(), medications, list(allergies))
    return [(f.kind.value, f.severity.value) for f in result.findings]


@pytest.mark.parametrize(
    "medications",
    [
        ["Simvastatin 20 mg", "Clarithromycin 500 mg tablets"],
        ["simvastatin 20mg", "clarithromycin"],
        ["Warfarin Sodium", "Diclofenac Sodium"],
        ["Lithium Carbonate", "naproxen sodium 250 mg"],
        ["Sildenafil Citrate", "isosorbide mononitrate 30 mg"],
        ["Tramadol HCl", "Phenelzine Sulfate"],
        ["morphine sulfate", "diazepam 5 mg"],
        ["acetylsalicylic acid", "warfarin"],
    ],
)
def test_a_strength_salt_or_synonym_typed_into_the_name_still_finds_the_pair(medications: list[str]) -> None:
    assert [severity for _, severity in shipped_findings(medications)] in (["major"], ["contraindicated"])


@pytest.mark.parametrize(
    ("medication", "allergy"),
    [
        ("co-amoxiclav", "penicillin"),
        ("Co-Amoxiclav 625 mg", "amoxicillin"),
        ("co-trimoxazole", "trimethoprim"),
        ("cotrimoxazole", "sulfa"),
        ("trimethoprim-sulfamethoxazole", "sulfa"),
        ("sulfamethoxazole and trimethoprim", "sulphonamides"),
        ("amoxicillin", "co-amoxiclav"),
        ("amoxicillin", "Penicillin allergy (anaphylaxis)"),
        ("Amoxicillin 500 mg capsules", "penicillin - rash"),
    ],
)
def test_combination_products_and_free_text_allergies_match_their_ingredients(medication: str, allergy: str) -> None:
    assert shipped_findings([medication], [allergy]) == [("allergy", "contraindicated")]


def test_co_trimoxazole_interacts_with_methotrexate_under_every_name() -> None:
    for name in ("co-trimoxazole", "Cotrimoxazole", "sulfamethoxazole/trimethoprim", "trimethoprim-sulfamethoxazole"):
        assert shipped_findings([name, "methotrexate 2.5 mg"]) == [("interaction", "major")], name


def test_unrelated_names_with_strengths_and_words_do_not_match() -> None:
    assert shipped_findings(["paracetamol 500 mg tablets", "cetirizine 10 mg"], ["latex", "no known drug allergy", "egg"]) == []


def test_a_penicillin_allergy_warns_but_does_not_block_a_cephalosporin() -> None:
    # Cross-reactivity is low (about 1-2%) and most penicillin allergy labels are not true allergy, so the
    # doctor is shown a recorded moderate finding and decides; a cephalosporin allergy itself still blocks.
    result = check(FileInteractionTables().current(), ["Cefalexin 500 mg"], ["Penicillin"])
    [finding] = result.findings
    assert (finding.kind, finding.severity, finding.severe) == (FindingKind.ALLERGY, Severity.MODERATE, False)
    assert finding.allergy == "penicillin" and "khan2022" in finding.sources
    assert result.severe == ()
    assert shipped_findings(["amoxicillin"], ["cephalosporins"]) == [("allergy", "moderate")]
    assert shipped_findings(["cefalexin"], ["cephalosporin"]) == [("allergy", "contraindicated")]
    assert shipped_findings(["cefalexin"], ["penicillin", "cefuroxime"]) == [("allergy", "contraindicated"), ("allergy", "moderate")]


def test_a_cross_reactivity_naming_an_unknown_group_is_refused() -> None:
    groups = copy.deepcopy(TABLE["allergy_groups"])
    groups["penicillins"]["cross_reactivity"] = [{"group": "nope", "severity": "moderate", "effect": "e", "sources": ["s1"]}]
    with pytest.raises(InvalidTableError):
        table(allergy_groups=groups)


@pytest.mark.parametrize("content", ["[" * 100_000, '{"version": ' + "9" * 5000 + "}"])
def test_a_table_file_too_deep_or_with_a_huge_number_makes_the_checker_unavailable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(CheckerUnavailableError):
        FileInteractionTables(path).current()
