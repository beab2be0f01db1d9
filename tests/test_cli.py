"""`pricing check` and `pricing schema` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from pricing.cli import main
from tests.conftest import CASES, REPO

BROKEN = CASES / "check" / "unknown_key_did_you_mean"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_clean_spec_exits_0() -> None:
    code, output = run("check", str(REPO / "specs"))
    assert (code, output) == (0, "0 errors, 0 warnings\n")


def test_errors_exit_1_with_text_and_caret() -> None:
    code, output = run("check", str(BROKEN))
    assert code == 1
    assert output.splitlines()[:3] == [
        f"{BROKEN.as_posix()}/spec.yaml:3:5: error[E201]: unknown key 'nmae' in a customer. "
        "Did you mean 'name'?",
        " 3 |     nmae: Acme",
        "   |     ^^^^",
    ]


def test_a_long_line_is_shown_around_the_error(tmp_path: Path) -> None:
    """A source line of 300 characters is shown as 120 of them around the span, cut with "…"
    on both sides, the caret under the span (the whole line was printed, 240,000 characters
    for a line nested too deeply)."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Wide\n")
    aliases = ", ".join(f"a{i:03}" for i in range(50))  # 50 × 6 characters
    address = "1 Long Street, " * 10
    line = f"  acme: {{ingest_aliases: [{aliases}], nmae: x, address: {address!r}}}"
    (tmp_path / "spec.yaml").write_text(f"customers:\n{line}\n")
    code, output = run("check", str(tmp_path))
    assert code == 1
    column = line.index("nmae") + 1
    assert output.splitlines()[:3] == [
        f"{tmp_path.as_posix()}/spec.yaml:2:{column}: error[E201]: unknown key 'nmae' in a customer. "
        "Did you mean 'name'?",
        " 2 | …" + line[column - 1 - 40 :][:120] + "…",
        "   | " + " " * 41 + "^^^^",
    ]


def test_bytes_a_spec_file_may_not_hold_are_located(tmp_path: Path) -> None:
    """A Latin-1 byte and a NUL character were reported at 1:1 (and the NUL's place as a
    "position" in the message): each is at its line and column, shown with its line."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Bytes\n")
    (tmp_path / "latin.yaml").write_bytes("customers:\n  café: {}\n".encode("latin-1"))
    (tmp_path / "nul.yaml").write_text("customers:\n  ok: {}\n  nul\x00: {}\n")
    code, output = run("check", str(tmp_path))
    assert code == 1
    assert output.splitlines()[:6] == [
        f"{tmp_path.as_posix()}/latin.yaml:2:6: error[E101]: not UTF-8 text: invalid continuation byte",
        " 2 |   caf\ufffd: {}",
        "   |      ^",
        f"{tmp_path.as_posix()}/nul.yaml:3:6: error[E101]: YAML syntax error: unacceptable character #x0000: "
        "control characters are not allowed",
        " 3 |   nul\x00: {}",
        "   |      ^",
    ]


def test_warnings_only_exit_0() -> None:
    code, output = run("check", str(CASES / "check" / "unused_metric"))
    assert code == 0
    assert output.endswith("0 errors, 1 warning\n")


def test_usage_errors_exit_2() -> None:
    assert run("check", "--format", "xml", str(BROKEN))[0] == 2
    assert run("check", "--no-such-flag")[0] == 2


def test_json_format() -> None:
    code, output = run("check", "--format", "json", str(CASES / "check" / "duplicate_id_across_files"))
    document = json.loads(output)
    assert code == 1
    assert (document["errors"], document["warnings"]) == (1, 1)
    error = next(d for d in document["diagnostics"] if d["code"] == "E103")
    assert error["file"].endswith("duplicate_id_across_files/b.yaml")
    assert (error["line"], error["column"], error["end_line"], error["end_column"]) == (2, 3, 2, 8)
    assert error["related"][0]["message"] == "first defined here"
    assert error["related"][0]["file"].endswith("/a.yaml")


def test_github_annotations() -> None:
    code, output = run("check", "--format", "github", "tests/cases/check/alias_conflicts")
    assert code == 1
    assert output.splitlines()[0] == (
        "::error file=tests/cases/check/alias_conflicts/spec.yaml,line=2,col=35,endLine=2,"
        "endColumn=41,title=E508::alias 'globex' of customer 'acme' is the id of customer 'globex'"
    )


def test_sarif_is_valid_2_1_0() -> None:
    code, output = run("check", "--format", "sarif", str(CASES / "check" / "overlapping_rates"))
    sarif = json.loads(output)
    assert code == 1
    assert sarif["version"] == "2.1.0"
    run_ = sarif["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == ["E506"]
    (result,) = run_["results"]
    assert result["level"] == "error"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (16, 9)
    assert result["relatedLocations"][0]["message"]["text"] == "the other rate"


def test_sarif_locations_are_uri_references(tmp_path: Path) -> None:
    """A file name with a space or a non-ASCII letter is percent-encoded in SARIF's `uri` (a URI
    reference, which code-scanning tools parse); the text output shows it as it is."""
    project = tmp_path / "my spec"
    project.mkdir()
    (project / "pricing.yaml").write_text("version: 1\nname: T\n")
    (project / "métriques.yaml").write_text("metrics:\n  x: {aggregation_type: SUMM}\n")
    code, output = run("check", "--format", "sarif", str(project))
    assert code == 1
    location = json.loads(output)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == f"{tmp_path}/my%20spec/m%C3%A9triques.yaml"
    assert run("check", str(project))[1].startswith(f"{project}/métriques.yaml:2:25: error[E204]")


def test_text_output_is_capped(tmp_path: Path) -> None:
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: T\n")
    customers = "".join(f"  c{i}: {{nmae: x}}\n" for i in range(60))
    (tmp_path / "c.yaml").write_text("customers:\n" + customers)
    code, output = run("check", str(tmp_path))
    assert code == 1
    assert output.count("error[E201]") == 50
    assert output.endswith("… and 10 more\n60 errors, 0 warnings\n")
    code, output = run("check", "--max-diagnostics", "0", str(tmp_path))
    assert output.count("error[E201]") == 60


def test_diagnostics_sorted_by_file_then_line() -> None:
    _, output = run("check", "--format", "json", str(CASES / "check" / "many_errors_all_reported"))
    places = [(d["file"], d["line"]) for d in json.loads(output)["diagnostics"]]
    assert places == sorted(places)
    assert len(places) == 4


def test_schema_command_prints_a_valid_schema_that_accepts_specs() -> None:
    code, output = run("schema")
    assert code == 0
    schema = json.loads(output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"metrics", "products", "rate_cards", "customers", "contracts"}
    assert "manifest" in schema["$defs"]


def test_a_spec_that_is_not_a_folder_is_named_once(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    result = CliRunner().invoke(main, ["check", missing])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"{missing}:1:1: error[E105]: {missing} is not a folder:"
        " a spec project is a folder with a pricing.yaml"
    )
