import pytest
from click.testing import CliRunner

from asdbench.cli import cli
from asdbench.config import load_toml, parse_assignments, resolve
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins


@pytest.fixture
def plugins():
    return build_plugins()


def test_system_defaults_then_file_then_set(plugins, tmp_path):
    base = resolve(plugins, "dcase-ae")
    assert base["epochs"] == 100 and base["batch_size"] == 512 and base["model_per"] == "type"
    assert base["frontend.frames"] == 5 and base["frontend.n_mels"] == 128
    toml = tmp_path / "c.toml"
    toml.write_text('epochs = 7\nlr = 0.01\n[frontend]\nn_mels = 64\n')
    cfg = resolve(plugins, "dcase-ae", load_toml(toml), parse_assignments(["epochs=3", "seed=5"]))
    assert cfg["epochs"] == 3 and cfg["lr"] == 0.01 and cfg["seed"] == 5 and cfg["frontend.n_mels"] == 64
    assert cfg.overridden == ("epochs", "frontend.n_mels", "lr", "seed")


def test_set_values_are_read_as_toml(plugins):
    vals = parse_assignments(["lr=1e-3", "epochs=3", "device=cpu", 'scheduler="cosine"', "x=true"])
    assert vals == {"lr": 1e-3, "epochs": 3, "device": "cpu", "scheduler": "cosine", "x": True}
    assert resolve(plugins, "dcase-ae", set_values={"lr": 1})["lr"] == 1.0  # int accepted for a float


def test_unknown_key_lists_valid_keys(plugins):
    with pytest.raises(AsdbenchError) as err:
        resolve(plugins, "dcase-ae", set_values={"epoch": 3})
    message = str(err.value)
    assert "unknown config key 'epoch'" in message
    for key in ("epochs", "batch_size", "lr", "seed", "device", "frontend.n_mels"):
        assert key in message


@pytest.mark.parametrize(
    "key,value,match",
    [("epochs", "three", "wrong type"), ("scheduler", "step", "not one of"), ("model_per", "machine", "not one of")],
)
def test_bad_values_are_errors(plugins, key, value, match):
    with pytest.raises(AsdbenchError, match=match):
        resolve(plugins, "dcase-ae", set_values={key: value})


def test_bad_set_syntax_and_bad_file(tmp_path):
    with pytest.raises(AsdbenchError, match="KEY=VALUE"):
        parse_assignments(["epochs"])
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(AsdbenchError, match="not valid TOML"):
        load_toml(bad)
    with pytest.raises(AsdbenchError, match="not found"):
        load_toml(tmp_path / "missing.toml")


def test_component_swap_brings_its_own_keys(plugins):
    cfg = resolve(plugins, "dcase-ae", set_values={"frontend": "logmel"})
    assert cfg.component("frontend") == "logmel"
    assert "frontend.frames" not in cfg.values
    with pytest.raises(AsdbenchError, match="unknown frontend"):
        resolve(plugins, "dcase-ae", set_values={"frontend": "nope"})


def test_resolved_toml_round_trips(plugins, tmp_path):
    cfg = resolve(plugins, "dcase-ae", set_values={"epochs": 4, "dataset.size": "tiny"})
    path = tmp_path / "resolved.toml"
    path.write_text(cfg.to_toml())
    again = resolve(plugins, "dcase-ae", load_toml(path))
    assert again.values == cfg.values and again.hash == cfg.hash


def test_config_show_cli():
    result = CliRunner().invoke(cli, ["config", "show", "dcase-ae", "--set", "epochs=2"])
    assert result.exit_code == 0, result.output
    assert "epochs = 2" in result.output and "\"frontend.frames\" = 5" in result.output
    bad = CliRunner().invoke(cli, ["config", "show", "dcase-ae", "--set", "nope=1"])
    assert bad.exit_code != 0 and "unknown config key 'nope'" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize("assignment, message", [
    ("epochs=-1", "epochs=-1 is out of range: 0 <= epochs"),
    ("epochs=0", "epochs=0 trains nothing, but this model has 267,928 weights to train (frontend 'logmel-frames', "
                 "backbone 'dense-ae', loss 'mse'): set epochs to 1 or more"),
    ("batch_size=-4", "batch_size=-4 is out of range: 1 <= batch_size <= 1,048,576"),
    ("lr=nan", "lr=nan is out of range: 0 < lr"),
    ("weight_decay=-0.1", "weight_decay=-0.1 is out of range: 0 <= weight_decay"),
    ("clip_seconds=-1", "clip_seconds=-1.0 is out of range: 0 <= clip_seconds <= 3,600"),
    ("threshold.q=1.5", "threshold.q=1.5 is out of range: 0 < threshold.q < 1"),
    ("val_fraction=0", "val_fraction=0.0 is out of range: 0 < val_fraction < 1"),
])
def test_numbers_out_of_range_are_refused_before_anything_runs(assignment, message, tmp_path):
    """An epochs=0 run used to end FINISHED untrained (and compare showed it); a threshold.q of 1.5 was refused only
    after training. Now: one line, and no MLflow store or run."""
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", assignment, "--set", "dataset.size=tiny",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and result.output == f"Error: {message}\n"
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("system, assignment, message", [
    ("dcase-ae", "frontend.n_mels=0", "gives empty features of shape (28, 0) for a clip of 16000 samples"),
    ("stgram-mfn", "frontend.n_mels=0", "cannot process a clip of 16000 samples: Given groups=1"),
    ("stgram-mfn", "clip_seconds=0.001", "cannot process a clip of 16 samples: Argument #4: Padding size"),
])
def test_frontend_parameters_it_cannot_work_with_are_refused_before_anything_runs(system, assignment, message,
                                                                                    tmp_path):
    """n_mels=0 used to fail the first model's training as a cache the disk could not write (dcase-ae), or in a
    traceback (stgram-mfn), after the MLflow run had started."""
    result = CliRunner().invoke(cli, ["run", system, "--set", "dataset.size=tiny", "--set", assignment,
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: frontend '") and message in last, last
    assert not (tmp_path / "mlflow.db").exists()


def test_a_frontend_whose_features_the_backbone_cannot_take_is_one_line(tmp_path):
    """mobilenetv2's trunk takes 1 or 3 channels of patches; the whole log-mel framed as (128, frames) examples
    used to end in a traceback from its first batch."""
    result = CliRunner().invoke(cli, ["run", "mobilenetv2", "--set", "dataset.size=tiny", "--set", "frontend=logmel",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith(
        "Error: backbone 'mobilenetv2' cannot take the features of frontend 'logmel' (one example: (128, 32)): ")
    assert "Training" not in result.output
