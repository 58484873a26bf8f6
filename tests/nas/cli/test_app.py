from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main
from search_space.baselines import list_baselines, seed_genome

ROW_KEYS = {"name", "input_size", "num_priors", "params", "macs", "macs_seed_convention",
            "backbone_params", "backbone_macs_seed_convention", "flash_bytes", "ram_bytes",
            "fits", "violations"}
TARGET_KEYS = {"name", "clock_mhz", "sram_bytes", "flash_bytes", "default_ram_budget",
               "default_flash_budget", "runtime"}




def test_targets_json(cli):
    code, out, _ = cli("targets", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {r["name"] for r in rows} == {"stm32h7", "esp32", "esp32s3", "host-litert",
                                         "host-tflm"}
    assert all(r.keys() >= TARGET_KEYS for r in rows)


def test_baselines_json_lists_every_baseline(cli):
    code, out, _ = cli("baselines", "--target", "stm32h7", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["name"] for r in rows] == [b.name for b in list_baselines()]
    assert all(r.keys() >= ROW_KEYS for r in rows)
    seed = next(r for r in rows if r["name"] == "etn-w1.0-ssdlite")
    assert seed["num_priors"] == 6132
    assert seed["backbone_macs_seed_convention"] == 182_673_408
    assert seed["backbone_params"] == 658_880


def test_human_tables_render(cli):
    for argv in (["targets"], ["baselines"], ["estimate", "etn-w0.35-ssdlite", "--target",
                                              "esp32s3"]):
        code, out, _ = cli(*argv)
        assert code in (0, 1) and out.strip()


def test_estimate_exit_codes_follow_the_budget(cli):
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7",
                       "--flash", "4MiB", "--ram", "4MiB", "--json")
    row = json.loads(out)
    assert code == 0 and row["fits"] and row["violations"] == []
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7",
                       "--flash", "64KiB", "--json")
    row = json.loads(out)
    assert code == 1 and not row["fits"]
    assert any(v.startswith("flash") for v in row["violations"])
    assert row["flash_budget"] == 64 * 1024


def test_estimate_genome_file(tmp_path: Path, cli):
    path = tmp_path / "g.json"
    path.write_text(seed_genome(0.5).to_json())
    code, out, _ = cli("estimate", "--genome", str(path), "--target", "esp32",
                       "--num-classes", "3", "--json")
    row = json.loads(out)
    assert code == (0 if row["fits"] else 1)
    assert row["name"] == "g" and row["num_classes"] == 3 and row["num_priors"] == 6132


def test_si_budget_is_noted(cli):
    code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7",
                         "--flash", "512KB", "--json")
    row = json.loads(out)
    assert row["flash_budget"] == 512_000
    assert code == (0 if row["fits"] else 1)
    assert "512,000" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h8"], "stm32h8"),
        (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--flash", "lots"], "lots"),
        (["estimate", "nope-net", "--target", "stm32h7"], "nope-net"),
        (["estimate", "--genome", "/nonexistent/g.json", "--target", "stm32h7"], "not found"),
        (["estimate", "--target", "stm32h7"], "exactly one model"),
        (["estimate", "etn-w0.35-ssdlite"], "--target"),
        (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--runtime", "tvm"], "tvm"),
        (["baselines", "--ram=-3KiB"], "-3KiB"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit directly
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_genome_file_is_one_line(tmp_path: Path, cli):
    path = tmp_path / "bad.json"
    data = seed_genome(0.5).to_dict()
    data["resolution"] = 100
    path.write_text(json.dumps(data))
    code, _, err = cli("estimate", "--genome", str(path), "--target", "stm32h7")
    assert code == 2 and "resolution=100" in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError, match="stm32h8"):
        main(["estimate", "etn-w0.35-ssdlite", "--target", "stm32h8", "--debug"])


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "tinynas"
    result = subprocess.run([str(script), "targets", "--json"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 5


def test_ctrl_c_outside_a_command_handler_is_one_line(monkeypatch, capsys):
    from nas import cli
    from nas.cli.targets import TargetsCommand

    def interrupted(self, args, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(TargetsCommand, "run", interrupted)
    assert cli.main(["targets"]) == 130
    assert capsys.readouterr().err == "tinynas targets: interrupted\n"


# -- estimate --proxy --------------------------------------------------------------------------

PROXY_KEYS = {"proxy", "proxy_name", "proxy_components", "proxy_seconds", "proxy_data"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from objectives.data.demo import DemoConfig, write_demo

    return write_demo(tmp_path_factory.mktemp("proxy") / "data",
                      DemoConfig(num_train=8, num_val=4, image_size=128))


def test_estimate_proxy_adds_the_score_and_its_parts(cli, tiny_data: Path):
    code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--flash",
                         "4MiB", "--ram", "4MiB", "--proxy", "composite", "--data",
                         str(tiny_data), "--json")
    row = json.loads(out)
    assert code == 0, err
    assert row.keys() >= ROW_KEYS | PROXY_KEYS
    assert row["proxy_name"] == "composite" and row["proxy_data"] == str(tiny_data.resolve())
    parts = row["proxy_components"]
    assert parts["score"] == row["proxy"] and 0 < row["proxy"] <= 1
    assert {"coverage", "geometry", "capacity", "backbone_macs"} <= set(parts)
    # Sized for the data's 3 classes, as a search would; the figures are that model's.
    assert row["num_classes"] == 3
    plain = json.loads(cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7",
                           "--num-classes", "3", "--json")[1])
    assert row["flash_bytes"] == plain["flash_bytes"] and row["params"] == plain["params"]
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--proxy",
                       "composite", "--data", str(tiny_data))
    assert code in (0, 1) and "proxy composite" in out and "coverage" in out
    assert "backbone_macs" in out


@pytest.mark.slow
def test_estimate_proxy_without_name_is_the_default_on_the_demo_data(cli, tiny_data: Path,
                                                                    monkeypatch, tmp_path):
    from objectives.proxies import DEFAULT_PROXY

    monkeypatch.setattr("nas.cli.data_args.demo_dataset", lambda: tiny_data)
    genome = tmp_path / "g.json"
    genome.write_text(seed_genome(0.35).to_json())
    code, out, err = cli("estimate", "--genome", str(genome), "--target", "esp32", "--proxy",
                         "--json")
    row = json.loads(out)
    assert code in (0, 1), err
    assert row["proxy_name"] == DEFAULT_PROXY and row["proxy_data"] == str(tiny_data.resolve())
    assert row["proxy_components"]["score"] == row["proxy"] and row["num_classes"] == 3
    assert f"no --data: using the built-in demo dataset ({tiny_data})" in err


def test_estimate_proxy_with_num_classes_scores_that_model(cli, tiny_data: Path):
    code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--proxy",
                         "prior-iou", "--data", str(tiny_data), "--num-classes", "5", "--json")
    row = json.loads(out)
    assert code in (0, 1), err
    assert row["num_classes"] == 5 and row["proxy_components"] == {"score": row["proxy"]}


@pytest.mark.parametrize("command", ["search", "estimate"])
def test_proxy_help_lists_every_proxy_with_its_measured_ranking(cli, monkeypatch, command):
    from objectives.proxies import DEFAULT_PROXY, list_proxies
    from objectives.proxies.measured import load_ranking

    monkeypatch.setenv("COLUMNS", "10000")  # one line per option: the names stay whole
    code, out, _ = cli(command, "--help")
    assert code == 0
    tau = next(iter(load_ranking().values()))["proxies"][DEFAULT_PROXY]["kendall_tau"]
    assert f"{DEFAULT_PROXY} (default) {tau:.2f}/" in out
    assert all(name in out for name in list_proxies())


def test_estimate_without_proxy_has_no_proxy_keys(cli):
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--json")
    row = json.loads(out)
    assert code in (0, 1) and not row.keys() & PROXY_KEYS and row["num_classes"] == 20
