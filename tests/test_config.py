"""Settings: defaults, a TOML file or a run's config.json (--config), flags on top."""

import dataclasses
import json
import re

import pytest

from cxrvae.cli import main
from cxrvae.config import SECTIONS, RunConfig, load_config, read_config_file
from cxrvae.errors import ConfigError

# Settings a config file can change but no flag does (rarely changed, kept off the command line;
# repeat is written by a run into the config of each of its repeats/ folders).
FILE_ONLY = {
    "test_fraction",
    "k_range",
    "n_init",
    "n_between",
    "n_reconstructions",
    "n_importance",
    "n_likelihood",
    "n_traversal",
    "traversal_sd",
    "repeat",
}


def test_every_setting_flag_is_the_kebab_case_of_its_field(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    fields = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    for name in ["seed", *fields]:
        flag = "--" + name.replace("_", "-")
        assert (flag in text) == (name not in FILE_ONLY), flag


def test_toml_file_gives_the_config_and_the_source(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(
        'seed = 3\nsource = "images.npz"\n[model]\nlatent_dims = [2, 8]\n'
        '[train]\nepochs = 7\n[analysis]\nn_clusters = "auto"\nn_between = 5\n'
    )
    cfg, source = load_config(path)
    assert source == "images.npz" and cfg.seed == 3
    assert cfg.model.latent_dims == (2, 8) and cfg.train.epochs == 7
    assert cfg.analysis.n_clusters is None and cfg.analysis.n_between == 5
    assert cfg.train.batch_size == RunConfig().train.batch_size  # not in the file: default
    over, _ = load_config(path, {"train": {"epochs": 2}, "seed": 1})
    assert over.train.epochs == 2 and over.seed == 1 and over.model.latent_dims == (2, 8)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepoch = 3\n", "unknown setting train.epoch"),
        ("[train]\nepochs = 0\n", "epochs must be >= 1"),
        ("seed = 'x'\n", "seed must be a whole number"),
        ("[model\n", "not valid TOML"),
        ("colour = 1\n", "unknown setting 'colour'"),
        ("[analysis]\nn_clusters = 1\n", "n_clusters must be 'auto' or >= 2"),
    ],
)
def test_bad_config_file_one_line_naming_file_and_setting(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = main(["train", "x.npz", "--config", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and re.fullmatch(r"cxrvae: error: .+", err), err
    assert str(path) in err and message in err
    assert not (tmp_path / "run").exists()


def test_a_runs_config_json_replays_it_and_flags_override(study, tmp_path, capsys):
    tmp, out = study
    settings, source = read_config_file(out / "config.json")
    assert source == str((tmp / "xray_images.npz").resolve())
    assert RunConfig.from_dict(settings) == RunConfig.from_dict(
        json.loads((out / "config.json").read_text())["config"]
    )
    # no DATA: the source comes from the file; the same settings give the same run
    replay = tmp_path / "replay"
    assert main(["train", "--config", str(out / "config.json"), "--out", str(replay), "-q"]) == 0
    for k in (2, 4):
        a = (out / f"latent_{k}" / "history.csv").read_text().splitlines()
        b = (replay / f"latent_{k}" / "history.csv").read_text().splitlines()
        assert [r.rsplit(",", 1)[0] for r in a] == [r.rsplit(",", 1)[0] for r in b]  # no seconds
    # a flag given on the command line overrides the file
    more = tmp_path / "more"
    args = ["train", "--config", str(out / "config.json"), "--out", str(more), "--epochs", "3"]
    assert main([*args, "--latent-dims", "2", "-q"]) == 0
    saved = json.loads((more / "config.json").read_text())["config"]
    assert saved["train"]["epochs"] == 3 and saved["model"]["latent_dims"] == [2]
    assert saved["data"] == json.loads((out / "config.json").read_text())["config"]["data"]


def test_settings_of_earlier_versions_still_load():
    cfg = RunConfig.from_dict({"analysis": {"clusters": 3}})  # renamed n_clusters
    assert cfg.analysis.n_clusters == 3
    with pytest.raises(ConfigError, match="unknown setting data.colour"):
        RunConfig.from_dict({"data": {"colour": 1}})
