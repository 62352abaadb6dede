# The fresh-machine check's pure parts: arguments, the binfmt_misc rule, base names, the report table.
from __future__ import annotations

from pathlib import Path

import pytest

from tools.fresh.__main__ import banner_problems, without_venv_problem
from tools.fresh.plan import ARCHES, Result, base_name, binfmt_rule, host_arch, parse_args, report


def test_default_is_both_architectures_in_build_fresh() -> None:
    o = parse_args([])
    assert o.arches == ("amd64", "arm64")
    assert o.cache == Path("build/fresh")
    assert not o.keep


def test_arch_list_is_trimmed_and_deduplicated() -> None:
    assert parse_args(["--arch", " arm64, amd64,arm64 "]).arches == ("arm64", "amd64")


@pytest.mark.parametrize("arg", ["riscv64", "", " , "])
def test_unknown_or_empty_arch_is_a_usage_error(arg: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_args(["--arch", arg])
    assert e.value.code == 2
    assert "choose from amd64, arm64" in capsys.readouterr().err


def test_timeout_scale_below_one_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--timeout-scale", "0.5"])


def test_host_arch_names() -> None:
    assert host_arch("x86_64") == "amd64"
    assert host_arch("aarch64") == "arm64"
    assert host_arch("riscv64") == ""


def test_binfmt_rule_matches_debians_qemu_aarch64_entry() -> None:
    # The same magic and mask as /usr/share/binfmts/qemu-aarch64 from Debian's qemu-user-static.
    rule = binfmt_rule(ARCHES["arm64"], "/usr/bin/qemu-aarch64-static")
    name, kind, offset, magic, mask, interp, flags = rule.decode().split(":")[1:]
    assert (name, kind, offset, interp, flags) == (
        "qemu-aarch64",
        "M",
        "",
        "/usr/bin/qemu-aarch64-static",
        "FP",
    )
    assert magic == r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
    assert mask == r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"


def test_base_name_changes_with_the_package_set() -> None:
    assert base_name("arm64") != base_name("amd64")
    assert base_name("amd64", prereqs=("git", "make")) != base_name("amd64", prereqs=("git", "make", "curl"))
    assert base_name("amd64", prereqs=("make", "git")) == base_name("amd64", prereqs=("git", "make"))


def test_report_shows_times_missing_steps_and_failures() -> None:
    ok = Result(
        "amd64",
        ok=True,
        seconds={"debootstrap": 61.04, "run_to_health": 95.5, "redeem_mqtt": 0.0421},
        facts={"python": "3.13.5"},
    )
    bad = Result("arm64", why="cannot run arm64 programs here: binfmt_misc is not mounted")
    text = report([ok, bad])
    assert "| step | amd64 | arm64 |" in text
    assert "| debootstrap (base root; 0 when taken from the cache) | 61.0 s | — |" in text
    assert "| redeem a demo code over MQTT (scan to verdict) | 42 ms | — |" in text
    assert "| python | 3.13.5 | — |" in text
    assert "| result | PASS | FAIL |" in text
    assert (
        text.splitlines()[-1] == "arm64: FAILED: cannot run arm64 programs here: binfmt_misc is not mounted"
    )


def test_banner_check_names_what_is_missing() -> None:
    http = "http://127.0.0.1:8123"
    full = (
        f"Web console {http}/console\nREST API docs {http}/docs health: {http}/api/health\n"
        "MQTT broker mqtt://127.0.0.1:1884\nLocal token var/local-token\nHXDEMO-VIP-0001\n"
    )
    assert banner_problems(full, http) == []
    assert banner_problems(full.replace("/console", "/x"), http) == ["console address"]
    assert banner_problems("", http) == [
        "console address",
        "health address",
        "MQTT broker line",
        "local token",
        "demo codes",
    ]


def test_make_run_without_python3_venv_must_stop_say_so_and_clean_up() -> None:
    said = "!! '/usr/bin/python3 -m venv' failed: install python3-venv (sudo apt-get install python3-venv)"
    assert without_venv_problem(2, said, venv_left=False) == ""
    assert "succeeded" in without_venv_problem(0, said, venv_left=False)
    assert "did not say" in without_venv_problem(2, "Error 1", venv_left=False)
    assert "left a .venv" in without_venv_problem(2, said, venv_left=True)
