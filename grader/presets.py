"""GPU presets (grader/presets.toml) and the model check of `make run MODEL=... PRESET=...`.

A preset is a table of lesson parameters; each lesson gets only those its parameters cell declares, read by
papermill's own inspection (grader.parameters.parameter_names), so a lesson without a knob keeps its defaults.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nbformat

from grader.parameters import parameter_names

PRESETS_FILE = Path(__file__).resolve().parent / "presets.toml"


def load_presets(path: Path = PRESETS_FILE) -> dict[str, dict[str, object]]:
    """Preset name -> {parameter name -> value}."""
    return tomllib.loads(path.read_text())


def for_lesson(preset: dict[str, object], notebook: Path) -> dict[str, object]:
    """The preset's parameters that this lesson declares."""
    names = parameter_names(nbformat.read(notebook, as_version=4))
    return {name: value for name, value in preset.items() if name in names}


def model_problem(model: str) -> str:
    """Empty when `model` can be loaded here (tiny, minilm, a folder, a hub id the hub or its cache answers), else one
    line that says why. A hub id is tried with huggingface_hub (config.json only): offline, it answers from the
    cache or fails at once."""
    from loracourse.errors import ModelChoiceError
    from loracourse.models import resolve_model

    try:
        path = resolve_model(model)
    except (ModelChoiceError, ImportError, FileNotFoundError) as err:
        return str(err)
    if Path(path).is_dir():
        return "" if (Path(path) / "config.json").is_file() else f"{path} is a folder without config.json: not a model"
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(path, "config.json")
    except Exception as err:  # offline, unknown, gated: all say the same to a user of make run
        return (
            f"model {model!r} needs the Hugging Face hub (network, and access if it is gated) or a local folder; "
            f"MODEL=tiny runs offline ({type(err).__name__})"
        )
    return ""
