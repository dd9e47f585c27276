"""``backtrace physics`` and the root command, through click and the script."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from backtrace._version import __version__
from backtrace.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def test_version_and_help(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "physics" in result.output


def test_console_script_version():
    exe = shutil.which("backtrace")
    if exe is None:
        pytest.skip("console script not installed")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stderr == ""
    assert __version__ in out.stdout


def test_table_json(runner, physics):
    result = runner.invoke(main, ["physics", "table", "--material", "iron",
                                  "--kinetic-energy", "10", "50", "100",
                                  "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["kinetic_energy_gev"] for r in rows] == [10.0, 50.0, 100.0]
    for r in rows:
        assert {"kinetic_energy_gev", "csda_range_m",
                "stopping_power_gev_per_m"} <= set(r)
    # 1 m of iron at 50 GeV costs ~1.88 GeV
    assert rows[1]["stopping_power_gev_per_m"] == pytest.approx(1.88, rel=0.02)


def test_table_unknown_material(runner, physics):
    result = runner.invoke(main, ["physics", "table", "--material", "steell",
                                  "--kinetic-energy", "10"])
    assert result.exit_code == 1
    assert "unknown material 'steell'" in result.output
    assert "iron" in result.output


def test_slab_json_keys_and_backward(runner, physics):
    args = ["physics", "slab", "--material", "iron", "--thickness", "1",
            "--kinetic-energy", "50", "--n", "2000", "--mode", "csda",
            "--json"]
    fwd = json.loads(runner.invoke(main, args + ["--direction", "forward"]).output)
    assert {"energy_in_gev", "energy_out_gev", "mean_loss_gev",
            "mean_loss_err_gev", "direction_out", "deflection_rad", "n",
            "mode", "direction"} <= set(fwd)
    assert fwd["energy_in_gev"] == 50.0
    assert fwd["mean_loss_gev"] == pytest.approx(1.874, rel=0.01)
    bwd = json.loads(runner.invoke(main, args + ["--direction", "backward"]).output)
    assert bwd["energy_out_gev"] == 50.0
    assert bwd["energy_in_gev"] == pytest.approx(51.886, rel=0.002)


def test_slab_field_in_vacuum(runner, physics):
    result = runner.invoke(main, [
        "physics", "slab", "--material", "vacuum", "--thickness", "1",
        "--kinetic-energy", "100", "--n", "100", "--field-tesla", "1.8", "0",
        "0", "--seed", "1", "--json"])
    payload = json.loads(result.output)
    assert payload["deflection_rad"] == pytest.approx(0.2998 * 1.8 / 100.1,
                                                      rel=0.01)


def test_slab_rejects_bad_thickness(runner, physics):
    result = runner.invoke(main, ["physics", "slab", "-m", "iron",
                                  "--thickness", "-1", "-k", "10"])
    assert result.exit_code == 1
    assert "thickness" in result.output
