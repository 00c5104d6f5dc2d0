"""Label table, seeds format, atomic writes and the CLI frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardioplan.cli import COMMANDS, build_parser, main
from cardioplan.errors import InputError, OutputError
from cardioplan.fileio import atomic_open, write_json_atomic
from cardioplan.labels import COMPOSITES, LABELS
from cardioplan.seeds import Seed, parse_seed_arg, read_seeds, write_seeds


def test_label_table_names_values_and_codes() -> None:
    expected = ["left_ventricle", "right_ventricle", "left_atrium", "right_atrium", "myocardium",
                "aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava",
                "blood_pool", "heart"]
    assert LABELS.names == expected
    assert LABELS.by_value(LABELS.value_of("aorta")).name == "aorta"
    assert len({lab.color for lab in LABELS}) == len(LABELS), "colours must tell structures apart"
    assert all(lab.snomed_code.isdigit() for lab in LABELS)
    assert LABELS["left_ventricle"].color_hex == "#dd4848"
    assert set(COMPOSITES["heart"]) >= {"left_ventricle", "myocardium", "right_atrium"}
    with pytest.raises(KeyError, match="known structures"):
        LABELS["left_ventricel"]


def test_seed_parsing_and_round_trip(tmp_path: Path) -> None:
    seed = parse_seed_arg("left_atrium=1.5,-2,3e1")
    assert seed == Seed("left_atrium", (1.5, -2.0, 30.0))
    with pytest.raises(InputError, match="NAME=x,y,z"):
        parse_seed_arg("left_atrium=1,2")
    with pytest.raises(InputError, match="unknown structure 'lv'"):
        parse_seed_arg("lv=1,2,3")
    write_seeds(tmp_path / "seeds.json", [seed, Seed("aorta", (0.0, 0.0, 0.0))])
    assert read_seeds(tmp_path / "seeds.json") == [seed, Seed("aorta", (0.0, 0.0, 0.0))]
    data = json.loads((tmp_path / "seeds.json").read_text())
    assert data["space"] == "LPS" and data["units"] == "mm"
    # a plan.json carries the same list
    (tmp_path / "plan.json").write_text(json.dumps({"seeds": data["seeds"]}))
    assert read_seeds(tmp_path / "plan.json")[0] == seed
    with pytest.raises(InputError, match="seeds file not found"):
        read_seeds(tmp_path / "nope.json")


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"], "temp file removed"
    with pytest.raises(OutputError, match="its folder does not exist|permission"), \
            atomic_open(Path("/proc/cardioplan/x.json")) as fh:
        fh.write("x")


def test_cli_lists_every_command_and_uses_exit_code_2_for_usage(capsys) -> None:
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {c.rstrip("_") for c in COMMANDS} == names, "every registered command ships"
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "cardioplan demo" in capsys.readouterr().out


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "shared.json", {"v": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644, \
        "outputs are readable by others, like any file the user writes"


def test_main_restores_the_logging_configuration(capsys) -> None:
    import logging

    logger = logging.getLogger("cardioplan")
    before = (logger.level, list(logger.handlers))
    assert main(["info", "/nonexistent/scan", "-q"]) == 1
    assert "not" in capsys.readouterr().err.lower(), "the error is printed even with -q"
    assert (logger.level, list(logger.handlers)) == before, "library users keep their logging"
