"""Unit tests of the helper package: twins, LoRA by hand, model resolution, the pinned environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from loracourse.lora import LoRALinear, lora_scaling
from loracourse.models import resolve_model
from loracourse.twins import PUBLISHED_TOTALS, build_twin

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("hub_id, total", sorted(PUBLISHED_TOTALS.items()))
def test_twin_has_the_published_total(hub_id, total):
    model = build_twin(hub_id)
    assert model.num_parameters() == total
    assert all(p.is_meta for p in model.parameters())  # no memory, no weights


def test_llama2_twin_lora_count_is_the_fact_sheet_number():
    model = get_peft_model(
        build_twin("meta-llama/Llama-2-7b-hf"),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    assert model.get_nb_trainable_parameters() == (4_194_304, 6_742_609_920)


# (r, lora_alpha, use_rslora, bias of the base layer)
LORA_CASES = [(1, 1, False, False), (4, 8, False, True), (8, 16, True, True), (16, 4, False, False)]


@pytest.mark.parametrize("r, lora_alpha, use_rslora, bias", LORA_CASES)
def test_hand_written_lora_equals_peft(r, lora_alpha, use_rslora, bias):
    torch.manual_seed(0)
    wrapped = get_peft_model(
        nn.Sequential(nn.Linear(24, 40, bias=bias)),
        LoraConfig(r=r, lora_alpha=lora_alpha, use_rslora=use_rslora, target_modules=["0"]),
    )
    peft_layer = wrapped.base_model.model[0]
    nn.init.normal_(peft_layer.lora_B["default"].weight)  # trained-looking, non-zero B
    ours = LoRALinear.from_peft(peft_layer)
    x = torch.randn(7, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peft_layer(x))
        # and the merged weight PEFT would write equals W0 + our delta_weight
        torch.testing.assert_close(peft_layer.get_delta_weight("default"), ours.delta_weight())
    assert ours.scaling == pytest.approx(lora_scaling(lora_alpha, r, use_rslora))


def test_fresh_lora_layer_is_a_noop_and_only_lora_trains():
    base = nn.Linear(10, 6)
    layer = LoRALinear(base, r=2, lora_alpha=4)
    x = torch.randn(3, 10)
    torch.testing.assert_close(layer(x), base(x))
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"lora_A.weight", "lora_B.weight"}
    assert torch.linalg.matrix_rank(layer.lora_B.weight @ torch.randn(2, 10)) == 0


@pytest.mark.parametrize("bad", ["tiyn", "not a model", "./no/such/folder", ""])
def test_resolve_model_names_the_bad_value_and_the_default(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad)) + ".*'tiny'"):
        resolve_model(bad)


def test_resolve_model_passes_hub_ids_and_folders_through(tmp_path):
    assert resolve_model("meta-llama/Llama-2-7b-hf") == "meta-llama/Llama-2-7b-hf"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert Path(resolve_model("tiny"), "config.json").is_file()


def test_minilm_is_a_real_pretrained_bert_with_query_key_value():
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model("minilm")
    model, tokenizer = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert {"query", "key", "value"} <= names and "q_proj" not in names
    with torch.no_grad():
        batch = tokenizer(
            ["a cat sat on the mat", "a kitten sat on the rug", "stock prices fell"], return_tensors="pt", padding=True
        )
        emb = model(**batch).last_hidden_state.mean(1)
    sim = torch.nn.functional.cosine_similarity
    assert sim(emb[0], emb[1], dim=0) > sim(emb[0], emb[2], dim=0)  # pretrained, not random


def test_importing_the_package_changes_nothing_global():
    """Every module of loracourse (found, not listed by hand) imports without touching seeds, rcParams or logging."""
    code = (
        "import torch, matplotlib, logging; s = torch.random.get_rng_state().clone(); "
        "rc = dict(matplotlib.rcParams); lv = logging.getLogger().level; "
        "import importlib, pkgutil, loracourse; "
        "names = [m.name for m in pkgutil.iter_modules(loracourse.__path__, 'loracourse.')]; "
        "[importlib.import_module(name) for name in names]; assert len(names) >= 19, names; "
        "assert torch.equal(s, torch.random.get_rng_state()); assert rc == dict(matplotlib.rcParams); "
        "assert lv == logging.getLogger().level"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def read_pins(path: Path) -> dict[str, str]:
    """{package: version} of the `name==version` lines of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def test_requirements_pin_every_course_package():
    pins = read_pins(ROOT / "requirements.txt")
    needed = {
        "jupyterlab",
        "nbgrader",
        "torch",
        "transformers",
        "peft",
        "bitsandbytes",
        "papermill",
        "accelerate",
        "matplotlib",
        "tqdm",
        "pytest",
    }
    assert needed <= set(pins)
    assert pins["transformers"].startswith("5.")


def test_environment_yml_uses_the_same_pins_and_a_python_the_makefile_supports():
    env = (ROOT / "environment.yml").read_text()
    python = re.search(r"^\s*-\s*python=(\S+)", env, re.M).group(1)
    supported = re.search(r"^SUPPORTED_PYTHONS := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    assert python in supported and python == supported[0], "conda users get the Python CI measures on"
    pip_entries = re.findall(r"^\s{6}-\s+(.+)$", env, re.M)
    pinned = {}
    for entry in pip_entries:
        if entry.startswith("-r "):
            pinned |= read_pins(ROOT / entry[3:].strip())
        else:
            name, _, version = entry.partition("==")
            pinned[name.lower()] = version
    assert pinned == read_pins(ROOT / "requirements.txt")


def test_hand_written_lora_matches_peft_over_a_bf16_base():
    """PEFT keeps adapters in fp32 over a bf16 base; LoRALinear.from_peft must follow (the GPU case)."""
    torch.manual_seed(0)
    wrapped = get_peft_model(
        nn.Sequential(nn.Linear(32, 16).to(torch.bfloat16)), LoraConfig(r=4, lora_alpha=8, target_modules=["0"])
    )
    peft_layer = wrapped.base_model.model[0]
    nn.init.normal_(peft_layer.lora_B["default"].weight)
    ours = LoRALinear.from_peft(peft_layer)
    assert ours.lora_A.weight.dtype == peft_layer.lora_A["default"].weight.dtype == torch.float32
    x = torch.randn(5, 32, dtype=torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peft_layer(x))


def test_task_writes_the_prompt_and_the_answer_with_a_leading_space(tmp_path):
    from loracourse.train import Task, read_jsonl

    rows = [{"q": "two plus two", "a": "four"}, {"q": "one plus one", "a": "two"}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = Task.from_jsonl("sums", "question : {q} answer :", "a", tmp_path / "train.jsonl", tmp_path / "train.jsonl")
    assert read_jsonl(tmp_path / "train.jsonl") == rows == task.train
    assert task.format(rows[0]) == ("question : two plus two answer :", " four")


def test_replaced_binds_for_the_block_and_restores_what_was_there():
    from loracourse.testing import replaced

    namespace = {"count": "learner's", "other": 1}
    with replaced(namespace, count="reference", extra=2):
        assert namespace == {"count": "reference", "other": 1, "extra": 2}
    assert namespace == {"count": "learner's", "other": 1}
    with pytest.raises(KeyError), replaced(namespace, count="reference"):
        namespace["missing"]  # the error inside the block is the point
    assert namespace["count"] == "learner's"


@pytest.mark.parametrize("omp, cores, expected", [("3", 8, 3), ("", 8, 4), ("", 2, 1), ("", 1, 1)])
def test_cpu_threads_leave_room_for_another_job(monkeypatch, omp, cores, expected):
    from loracourse import env

    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    monkeypatch.setattr(env.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert env.cpu_threads() == expected


def test_require_causal_lm_passes_decoders_and_names_the_problem_with_encoders():
    from loracourse.errors import ModelChoiceError
    from loracourse.models import require_causal_lm

    assert require_causal_lm(resolve_model("tiny")) == resolve_model("tiny")
    with pytest.raises(ModelChoiceError, match="BertModel, not a causal language model.*'tiny'") as err:
        require_causal_lm(resolve_model("minilm"))
    assert isinstance(err.value, ValueError)


@pytest.mark.slow
def test_course_errors_show_as_one_line_in_a_notebook(tmp_path):
    """In a kernel, a CourseError renders as its one line (IPython's _render_traceback_), no library frames."""
    import nbformat
    from papermill import execute_notebook
    from papermill.exceptions import PapermillExecutionError

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from loracourse.models import require_causal_lm, resolve_model\n"
                "require_causal_lm(resolve_model('minilm'))"
            )
        ]
    )
    nbformat.write(nb, tmp_path / "in.ipynb")
    with pytest.raises(PapermillExecutionError):
        execute_notebook(
            str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False
        )
    error = nbformat.read(tmp_path / "out.ipynb", 4).cells[-1].outputs[-1]
    assert error.ename == "ModelChoiceError" and len(error.traceback) == 1, error.traceback
    assert error.traceback[0].startswith("ModelChoiceError: ") and "not a causal language model" in error.traceback[0]
