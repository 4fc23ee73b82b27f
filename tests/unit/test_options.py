"""One options model (harness.options): every face shows the options the table gives it, with the declared
default; the same values give the same settings whichever face they come through; a new option is one
table entry; bad input is a UsageError (exit 2) and anything else a bug (exit 3)."""

from __future__ import annotations

import argparse
import ast
import inspect
from dataclasses import fields, replace
from pathlib import Path

import pytest

import harness
from harness import cli, options, pytest_plugin
from harness.options import (OPTIONS, AuditSettings, CheckSettings, Option, Settings, UsageError, options_for, resolve,
                             settings)

ROOT = Path(__file__).resolve().parents[2]
CLI_FACES = ("run", "audit", "gate", "exact", "compare", "sweep")


def subparser(face: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[face]


def optionals(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}


@pytest.mark.parametrize("face", CLI_FACES)
def test_every_command_shows_its_options_from_the_table_with_the_declared_defaults(face):
    shown = optionals(subparser(face))
    declared = options_for(face)
    # nothing added by hand beside the table, nothing of the table left out
    assert sorted(shown) == sorted(o.name for o in declared)
    for o in declared:
        action = shown[o.name]
        assert action.option_strings == [o.flag]
        assert action.default == o.default, o.name
        assert action.required == o.required, o.name
        assert action.help == o.help, o.name
        if o.kind == "value" and o.choices is None:
            assert action.metavar == o.metavar, o.name


def test_the_faces_defaults_are_the_declared_ones_with_their_overrides():
    by_face = {face: {o.name: o.default for o in options_for(face)} for face in options.FACES}
    assert by_face["run"]["examples"] == by_face["audit"]["examples"] == 80
    assert by_face["check"]["examples"] == by_face["plugin"]["examples"] == by_face["audit_api"]["examples"] == 60
    assert by_face["audit"]["out"] == str(Path("reports") / "audit") and by_face["run"]["out"] == "reports"
    assert by_face["gate"]["seed"] is None  # the baseline's
    assert by_face["audit"]["speed_elements"] == 0 and by_face["run"]["speed_elements"] == 1_000_000
    # the settings dataclasses take their defaults from the same table
    assert Settings() == settings(Settings, "run")
    assert CheckSettings(family="sigmoid_ce") == settings(CheckSettings, "check", {"family": "sigmoid_ce"})
    assert AuditSettings(family="sigmoid_ce") == settings(AuditSettings, "audit_api", {"family": "sigmoid_ce"})


def test_every_option_a_settings_class_carries_is_a_field_and_every_field_an_option():
    run = {o.name for o in options_for("run")}
    assert {"seed", "examples", "families", "candidates", "dtypes", "speed_elements", "shrink"} <= run
    assert {f.name for f in fields(AuditSettings)} == {o.name for o in options_for("audit_api")}
    assert {f.name for f in fields(CheckSettings)} == {o.name for o in options_for("check")}
    # the audit command passes every audit_api option but isolate (always isolated) and adds its own
    assert {o.name for o in options_for("audit_api")} - {o.name for o in options_for("audit")} == {"isolate"}


def test_check_and_the_fixture_take_exactly_the_check_options():
    names = {o.name for o in options_for("check")}
    for function in (pytest_plugin.check, pytest_plugin.LossFuzz.check):
        params = set(inspect.signature(function).parameters) - {"self", "fn"}
        assert params == names, function


def test_the_plugin_adds_each_plugin_option_to_the_command_line_and_the_ini_file():
    added, ini = {}, {}

    class Group:
        def addoption(self, flag, **kw):
            added[flag] = kw

    class Parser:
        def getgroup(self, *a):
            return Group()

        def addini(self, name, help, default=None):
            ini[name] = default

    pytest_plugin.pytest_addoption(Parser())
    declared = options_for("plugin")
    assert sorted(added) == sorted(f"--lossfuzz-{o.flag[2:]}" for o in declared) == ["--lossfuzz-examples", "--lossfuzz-quantities", "--lossfuzz-seed"]
    assert sorted(ini) == sorted(f"lossfuzz_{o.name}" for o in declared)
    assert added["--lossfuzz-examples"]["type"]("7") == 7
    assert added["--lossfuzz-quantities"]["type"]("gradient") == ("gradient",)
    with pytest.raises(argparse.ArgumentTypeError, match="quantity='grad' is not one of: loss, gradient"):
        added["--lossfuzz-quantities"]["type"]("loss,grad")
    with pytest.raises(argparse.ArgumentTypeError, match="-3 is negative"):
        added["--lossfuzz-examples"]["type"]("-3")


AUDIT_ARGV = ["audit", "m:f", "--family", "binary_ce", "--seed", "3", "--examples", "7", "--dtypes", "float32,float64",
              "--compare", "numpy_stable", "--takes", "y_true,y_pred", "--inputs", "probs", "--reduction", "mean",
              "--kwargs", '{"eps": 0}', "--timeout", "2.5", "--memory-mb", "512", "--labels", "hard", "--no-per-element",
              "--no-shrink", "--speed-elements", "0"]
AUDIT_KWARGS = dict(family="binary_ce", seed=3, examples=7, dtypes=("float32", "float64"), compare_with=("numpy_stable",),
                    takes="y_true,y_pred", inputs="probs", reduction="mean", kwargs={"eps": 0}, timeout=2.5,
                    memory_mb=512, labels="hard", per_element=False, shrink=False, speed_elements=0)


def test_the_audit_command_and_harness_audit_build_equal_settings_for_the_same_values():
    from_argv = settings(AuditSettings, "audit", cli.build_parser().parse_args(AUDIT_ARGV))
    from_python = settings(AuditSettings, "audit_api", AUDIT_KWARGS)
    assert from_argv == from_python
    # ... and text as typed reads the same as the Python values
    assert settings(AuditSettings, "audit_api", {k: v if isinstance(v, str) else str(v) for k, v in
                                                 dict(family="binary_ce", seed=3, examples=7, timeout=2.5).items()}) \
        == settings(AuditSettings, "audit_api", dict(family="binary_ce", seed=3, examples=7, timeout=2.5))


def test_run_argv_and_the_plugin_build_equal_campaign_settings_for_the_same_values():
    args = cli.build_parser().parse_args(["run", "--seed", "3", "--examples", "7", "--families", "sigmoid_ce",
                                          "--dtypes", "float64", "--speed-elements", "0"])
    from_argv = settings(Settings, "run", args)
    # the plugin: --lossfuzz-seed 3 on the command line (parsed), lossfuzz_examples = 7 in the ini file (text)
    plugin = resolve("plugin", {"seed": 3, "examples": "7"})
    check = settings(CheckSettings, "check", {**plugin, "family": "sigmoid_ce", "dtype": "float64"})
    assert replace(from_argv, candidates=()) == check.campaign()


def test_the_fixture_resolves_marker_then_plugin_options_then_the_declared_defaults(monkeypatch):
    monkeypatch.setattr(pytest_plugin, "check_settings", lambda fn, chosen: chosen)
    plain = pytest_plugin.LossFuzz(None, {"family": "sigmoid_ce"}).check(print)
    # the fixture once took 80 examples (the run default) while check() and the README said 60
    assert plain == CheckSettings(family="sigmoid_ce") and plain.examples == 60 and plain.max_ulp == 4.0
    marked = pytest_plugin.LossFuzz(None, {"family": "sigmoid_ce", "examples": 9, "max_ulp": None}).check(print, seed=5)
    assert (marked.examples, marked.seed, marked.max_ulp) == (9, 5, None)
    assert pytest_plugin.check(print, "sigmoid_ce", max_ulp=None).max_ulp is None
    assert pytest_plugin.check(print, "sigmoid_ce").max_ulp == 4.0
    with pytest.raises(TypeError, match="unknown argument 'exmples'"):
        pytest_plugin.LossFuzz(None, {"exmples": 3})


def test_a_new_option_is_one_table_entry(monkeypatch):
    new = Option("focal_gamma", options.count, 2, "a new option (default 2)", "G",
                 faces={"run": {}, "plugin": {}, "audit": {"default": 5}})
    monkeypatch.setattr(options, "OPTIONS", OPTIONS + (new,))
    args = cli.build_parser().parse_args(["run", "--focal-gamma", "4"])
    assert resolve("run", args)["focal_gamma"] == 4
    assert resolve("audit", cli.build_parser().parse_args(["audit", "m:f"]))["focal_gamma"] == 5
    assert "focal_gamma" not in resolve("gate", {})
    added = []

    class Group:
        def addoption(self, flag, **kw):
            added.append(flag)

    class Parser:
        def getgroup(self, *a):
            return Group()

        def addini(self, *a, **kw):
            pass

    pytest_plugin.pytest_addoption(Parser())
    assert "--lossfuzz-focal-gamma" in added
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--focal-gamma", "-1"])


def test_settings_json_is_generic_and_keeps_the_report_form():
    assert list(Settings().to_json()) == ["seed", "examples", "families", "candidates", "dtypes", "speed_elements", "shrink"]
    data = Settings(seed=2, families=("sigmoid_ce",), labels="hard", stop_after=20, max_chunks=1024).to_json()
    assert data["families"] == ["sigmoid_ce"] and data["labels"] == "hard"
    assert (data["stop_after"], data["max_chunks"]) == (20, 1024)
    assert "labels" not in Settings(labels="all").to_json()
    assert Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}) == \
        Settings(seed=2, families=("sigmoid_ce",), labels="hard", stop_after=20, max_chunks=1024)


@pytest.mark.parametrize(
    "face, given, expected",
    [
        ("audit_api", {"examples": -3}, "-3 is negative"),
        ("audit_api", {"dtypes": "float24"}, "dtype='float24' is not one of: float16, bfloat16, float32, float64"),
        ("audit_api", {"family": "hinge"}, "family='hinge' is not one of"),
        ("check", {"max_ulp": -1}, "max_ulp=-1.0 is not a bound"),
        ("check", {"reduction": "avg"}, "reduction='avg' is not one of: none, sum, mean"),
        ("gate", {"max_ulp_regression": "0.5x"}, "at least 1"),
        ("audit", {"kwargs": "[1]"}, "is not a JSON object"),
    ],
)
def test_bad_values_are_one_line_usage_errors_on_every_face(face, given, expected):
    with pytest.raises(UsageError) as info:
        resolve(face, given)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_harness_audit_keeps_its_keyword_form_and_refuses_unknown_keywords():
    with pytest.raises(TypeError, match="unknown option 'exmples'"):
        harness.audit("m:f", family="sigmoid_ce", exmples=3)
    with pytest.raises(UsageError, match="audit needs family="):
        harness.audit("tests.fixtures.flawed_losses:stable_ce")
    with pytest.raises(TypeError, match="not both"):
        harness.audit("m:f", AuditSettings(family="sigmoid_ce"), examples=3)


# ------------------------------------------------------------------------------------------- exit codes


def test_a_bug_is_an_internal_error_with_its_traceback_and_exit_code_3(monkeypatch, capsys, tmp_path):
    import harness.campaign

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside the campaign")

    monkeypatch.setattr(harness.campaign, "run_campaign", broken)
    code = cli.main(["run", "--families", "sigmoid_ce", "--out", str(tmp_path), "--no-progress", "--no-corpus"])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" in err and "a bug deep inside the campaign" in err and "internal error" in err


def test_bad_input_read_from_a_file_is_still_a_usage_error(capsys, tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "sigmoid_ce.float32.json").write_text("{")
    code = cli.main(["run", "--families", "sigmoid_ce", "--dtypes", "float32", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sigmoid_ce.float32.json" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------- layout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_commands_never_import_the_cli_and_the_cwd_is_added_to_sys_path_in_one_place():
    for path in (ROOT / "harness" / "commands").glob("*.py"):
        assert not {"..cli", "harness.cli"} & _imports(path), path
    inserts = [p for p in (ROOT / "harness").rglob("*.py") if "sys.path.insert" in p.read_text()]
    assert inserts == [ROOT / "harness" / "options.py"]
    # (that options imports only floors 1-2 is tests/unit/test_layers.py's job)
