"""Unit tests of lesson 2's helpers: loracourse.configs (reading what a LoraConfig did), loracourse.sweep, plots.

At the end, lesson 2's visible tests against plausible mistakes besides the one tests/lessons/ holds per exercise.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from matplotlib.figure import Figure
from peft import LoraConfig, get_peft_model
from peft.tuners.tuners_utils import BaseTuner
from transformers import AutoModelForCausalLM, AutoTokenizer

from grader.hidden import split_hidden
from loracourse.configs import (
    lora_layers,
    require_llama_layout,
    show_configs,
    toy_llama,
    trainable_parts,
    try_config,
)
from loracourse.errors import ModelChoiceError
from loracourse.models import minilm_dir, resolve_model
from loracourse.plots import plot_continued, plot_sweep
from loracourse.sweep import SweepChoiceError, check_ranks, run_sweep
from loracourse.train import sentiment_task


def test_toy_llama_is_small_seeded_and_leaves_the_rng_alone():
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    a, b = toy_llama(seed=3), toy_llama(seed=3)
    assert torch.equal(torch.rand(1), expected_next), "building a toy must not move the caller's RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert a.model.layers[0].self_attn.k_proj.out_features < a.model.layers[0].self_attn.q_proj.out_features  # GQA
    assert a.model.layers[0].self_attn.q_proj.bias is None
    assert toy_llama(bias=True).model.layers[0].mlp.down_proj.bias is not None


def test_lora_layers_are_named_as_in_the_base_model():
    wrapped = get_peft_model(toy_llama(num_hidden_layers=3), LoraConfig(target_modules=["v_proj"]))
    assert sorted(lora_layers(wrapped)) == [f"model.layers.{i}.self_attn.v_proj" for i in range(3)]
    assert lora_layers(toy_llama()) == {}


# (LoraConfig fields, expected parts) on the default toy (hidden 16, q 16 -> 16, v 16 -> 8, 2 layers, vocab 40)
PARTS = [
    ({"r": 2, "target_modules": ["q_proj", "v_proj"]}, {"LoRA A, B": 2 * 2 * (32 + 24)}),
    ({"r": 2, "target_modules": ["q_proj"], "use_dora": True}, {"LoRA A, B": 2 * 64, "DoRA magnitudes": 2 * 16}),
    ({"r": 1, "target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}, {"LoRA A, B": 2 * 32, "full copies": 640}),
]


@pytest.mark.parametrize("fields, parts", PARTS)
def test_trainable_parts_sum_to_peft_count(fields, parts):
    wrapped = get_peft_model(toy_llama(), LoraConfig(**fields))
    assert trainable_parts(wrapped) == parts
    assert sum(parts.values()) == wrapped.get_nb_trainable_parameters()[0]


def test_trainable_parts_names_biases():
    wrapped = get_peft_model(toy_llama(bias=True), LoraConfig(r=1, target_modules=["q_proj"], bias="lora_only"))
    assert trainable_parts(wrapped)["biases"] == 2 * 16


def test_try_config_reports_and_leaves_the_model_as_it_was():
    model = toy_llama()
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", rank_pattern={"down_proj": 2})
    report = try_config(model, config, "x")
    assert (report.label, report.peft_class, len(report.layers)) == ("x", "PeftModel", 14)
    assert report.ranks == [2, 4] and report.scalings == [2.0, 4.0]
    assert lora_layers(model) == {} and not hasattr(model, "peft_config")
    assert set(model.state_dict()) == set(before)
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())
    again = try_config(model, LoraConfig(target_modules=["q_proj"]))  # no "second time" wrapping
    assert len(again.layers) == 2


def test_try_config_lets_peft_errors_through_and_changes_nothing():
    model = toy_llama()
    with pytest.raises(ValueError, match="not found in the base model"):
        try_config(model, LoraConfig(target_modules=["query"]))
    assert lora_layers(model) == {}


def test_show_configs_prints_one_row_per_config(capsys):
    reports = show_configs(toy_llama(), {"a": LoraConfig(r=2, target_modules=["q_proj"]), "b": LoraConfig(r=4)})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].startswith("a") and lines[2].startswith("b")
    assert [r.trainable for r in reports] == [2 * 2 * 32, 2 * 4 * (32 + 24)]
    assert "+" in lines[2]  # the change from the first row


def test_require_llama_layout_accepts_llama_and_names_the_problem_otherwise():
    tiny = resolve_model("tiny")
    assert require_llama_layout(tiny) == tiny
    with pytest.raises(ModelChoiceError, match="Llama's module names"):
        require_llama_layout(str(minilm_dir()))  # BERT: encoder.layer.0.attention.self.query


def test_run_sweep_runs_each_setting_and_leaves_the_base():
    path = resolve_model("tiny")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    configs = {
        "a": LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]),
        "b": LoraConfig(r=2, lora_alpha=2, use_rslora=True, target_modules=["q_proj"]),  # 2 / sqrt(2)
        "c": LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]),  # same as a
    }
    runs = run_sweep(model, tokenizer, sentiment_task(), configs, max_steps=2, lr=1e-3, seed=0)
    assert [run.label for run in runs] == ["a", "b", "c"]
    assert runs[0].scaling == 2.0 and runs[1].scaling == pytest.approx(2**0.5)
    assert all(len(run.losses) == 2 and 0 <= run.score <= 1 for run in runs)
    assert runs[0].losses == runs[2].losses, "same rank and scale, same seed: the same run"
    assert runs[0].trainable == 4 * 2 * (128 + 128)
    assert lora_layers(model) == {}


def test_plot_helpers_return_a_figure():
    fig = plot_sweep({"p": {"r=1": [3.0, 2.0]}, "q": {"r=2": [3.0, 1.0], "r=4": [2.0, 1.5]}})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    fig = plot_continued([3.0, 2.0, 1.0], {"x1": [0.9, 0.8], "x2": [1.5, 1.0]})
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 4  # 3 curves and the dashed line


@pytest.mark.parametrize("ranks", [[1, 4], (2,)])
def test_check_ranks_passes_a_list_of_ranks(ranks):
    assert check_ranks(ranks, hidden_size=128) == list(ranks)


@pytest.mark.parametrize("ranks", ["[1, 4]", [], [0, 4], [1, 256], [1.0, 4], [True]])
def test_check_ranks_names_the_problem_in_one_line(ranks):
    with pytest.raises(SweepChoiceError, match="expected a list of ranks from 1 to the hidden size 128") as err:
        check_ranks(ranks, hidden_size=128)
    assert "\n" not in str(err.value) and err.value._render_traceback_() == [f"SweepChoiceError: {err.value}"]


# -- lesson 2's visible tests ------------------------------------------------------------------------------------

LESSON_2 = Path(__file__).resolve().parents[1] / "solutions" / "02-lora-config" / "02-lora-config.ipynb"
NOTEBOOK_NAMES = """
import math
from peft import LoraConfig, get_peft_model
from torch import nn
from loracourse.configs import lora_layers, toy_llama, try_config
from loracourse.twins import build_twin
"""
ALPHA = "def alpha_for_rank(r_old, alpha_old, r_new, use_rslora=False):\n    "
COUNT = "def count_trainable(model, target_modules, r, bias='none', modules_to_save=None, use_dora=False):\n    "
FIELDS = "r=r, target_modules=target_modules, bias=bias, modules_to_save=modules_to_save, use_dora=use_dora"
LORA_ONLY_AS_ALL = """count = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in target_modules):
            count += r * (module.in_features + module.out_features) + (module.out_features if use_dora else 0)
        if any(name.endswith(m) for m in modules_to_save or []):
            count += sum(p.numel() for p in module.parameters())
    if bias != "none":  # "lora_only" counted like "all"
        count += sum(p.numel() for name, p in model.named_parameters() if name.endswith("bias"))
    return count"""
RSLORA = "alpha_old * math.sqrt(r_new / r_old) if use_rslora else "
OTHER_MISTAKES = {  # name: (the exercise, the wrong answer, what the visible tests' message says)
    "alpha with //": ("alpha_for_rank", ALPHA + "return " + RSLORA + "alpha_old * r_new // r_old", "got int 64"),
    "alpha rounded": ("alpha_for_rank", ALPHA + "return " + RSLORA + "round(alpha_old * r_new / r_old)", "got int 64"),
    "count by try_config": (
        "count_trainable",
        COUNT + f"return try_config(model, LoraConfig({FIELDS})).trainable",
        "predict the count without wrapping",
    ),
    "count by an alias of get_peft_model, errors swallowed": (
        "count_trainable",
        "from peft import get_peft_model as wrap\n"
        + COUNT
        + f"try:\n        return wrap(model, LoraConfig({FIELDS})).get_nb_trainable_parameters()[0]\n"
        + "    except AssertionError:\n        return 0",
        "predict the count without wrapping",
    ),
    "lora_only counted as all": ("count_trainable", COUNT + LORA_ONLY_AS_ALL, "'bias': 'lora_only'}: expected PEFT's"),
}


def visible_tests(grade_id: str) -> str:
    """The released part of one of lesson 2's test cells (its hidden tests cut)."""
    nb = nbformat.read(LESSON_2, as_version=4)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(split_hidden(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")[0])


@pytest.mark.parametrize("mistake", list(OTHER_MISTAKES))
def test_lesson_2_visible_tests_catch_other_mistakes(mistake):
    """Integer division, rounding, wrapping the model (however PEFT is reached), lora_only counted like all."""
    exercise, answer, message = OTHER_MISTAKES[mistake]
    inject = BaseTuner.inject_adapter
    namespace: dict = {}
    exec(NOTEBOOK_NAMES + answer, namespace)
    with pytest.raises(AssertionError, match=re.escape(message)):
        exec(visible_tests(f"{exercise}_tests"), namespace)
    assert BaseTuner.inject_adapter is inject, "the test cell puts PEFT's inject_adapter back"
