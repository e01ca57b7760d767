"""Unit tests of lesson 2's helpers: loracourse.configs (reading what a LoraConfig did), loracourse.sweep, plots."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

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
