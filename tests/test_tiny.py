"""The course's tiny model and its data: loading, rebuilding, reproducibility, LoRA, 8-bit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from loracourse import build_tiny, corpus
from loracourse.models import TINY_DIR
from loracourse.train import exact_match, predict, sentiment_task, train_lora

LLAMA_NAMES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"}
BUILD_TIMEOUT_S = 1200  # a hang guard, not a speed test: the model card records the measured build time
LESSON1_LORA = dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
LESSON1_TRAIN = dict(max_steps=100, lr=3e-3, batch_size=16, seed=0, show_progress=False)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TINY_DIR)


@pytest.fixture
def model():
    return AutoModelForCausalLM.from_pretrained(TINY_DIR)  # fresh per test: LoRA changes it


def lora_finetune(model, tokenizer) -> tuple[torch.nn.Module, list[float]]:
    """Lesson 1's recipe: LoRA r=8 on q_proj and v_proj, trained on the task's train split."""
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(**LESSON1_LORA))
    return model, train_lora(model, tokenizer, sentiment_task(), **LESSON1_TRAIN)


def json_without_version(path: Path) -> dict:
    """A saved JSON file's content, less the transformers version that wrote it."""
    content = json.loads(path.read_text(encoding="utf-8"))
    content.pop("transformers_version", None)
    return content


def card_numbers(folder: Path) -> dict[str, float]:
    """The held-out loss and base exact-match numbers that a model card states."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    return {
        "valid_loss": float(re.search(r"^\| tiny-llama\s*\| ([0-9.]+) \|", text, re.M).group(1)),
        "unigram_loss": float(re.search(r"^\| unigram baseline.*?\| ([0-9.]+) \|", text, re.M).group(1)),
        "base_test_em": float(re.search(r"^\| `sentiment_test.jsonl`.*\| ([0-9.]+)% \|$", text, re.M).group(1)) / 100,
    }


def test_loads_as_llama_with_real_module_names(model, tokenizer):
    """AutoModelForCausalLM/AutoTokenizer load the committed folder as a Llama-2-style model."""
    assert LLAMA_NAMES <= {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    config = model.config
    assert config.model_type == "llama" and not config.tie_word_embeddings
    assert config.num_key_value_heads == config.num_attention_heads
    assert tokenizer.pad_token_id not in (None, tokenizer.eos_token_id, tokenizer.bos_token_id)
    ids = tokenizer("the soup was delicious .").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the soup was delicious ."
    assert (TINY_DIR / "model.safetensors").stat().st_size < 5_000_000


def known_upstream_lines() -> list[str]:
    """stderr lines this machine gets from the libraries whatever the course does, each with its upstream cause.

    bitsandbytes 0.50.2 (the newest release) tries, at import, to fetch a fused 4-bit CPU kernel from the hub
    on CPUs with AVX512-BF16, and logs a warning when it cannot (bitsandbytes-foundation/bitsandbytes#2064):
    offline it never can. Only on such CPUs is that line expected.
    """
    from bitsandbytes.functional import has_avx512bf16

    return ["Failed to load CPU gemm_4bit_forward from kernels-community"] if has_avx512bf16() else []


def test_normal_use_prints_no_warnings():
    """Loading, generating and wrapping with LoRA write nothing but progress bars to stderr."""
    code = (
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from peft import LoraConfig, get_peft_model\n"
        f"path = {str(TINY_DIR)!r}\n"
        "tokenizer = AutoTokenizer.from_pretrained(path)\n"
        "model = AutoModelForCausalLM.from_pretrained(path)\n"
        "model.generate(**tokenizer('the soup was', return_tensors='pt'), max_new_tokens=5, do_sample=False)\n"
        "get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in re.split(r"[\r\n]+", result.stderr) if line.strip()]
    known = known_upstream_lines()
    unexpected = [
        line for line in lines if not line.startswith("Loading weights") and not any(line.startswith(k) for k in known)
    ]
    assert unexpected == []


def test_data_files_match_generator():
    """The committed files in loracourse/data/ are exactly what corpus.py generates."""
    for name, text in corpus.generate().items():
        assert (corpus.DATA_DIR / name).read_bytes() == text.encode("utf-8"), name
    assert sum(p.stat().st_size for p in corpus.DATA_DIR.iterdir()) < 1_000_000


def test_task_splits_use_disjoint_adjectives():
    """Held-out reviews use only adjectives that fine-tuning never shows, but pretraining does."""
    task = sentiment_task()
    words = lambda examples: {w for ex in examples for w in ex["review"].split()}  # noqa: E731
    assert words(task.train) & set(corpus.TEST_ADJECTIVES) == set()
    assert set(corpus.TEST_ADJECTIVES) <= words(task.test)
    pretraining = set(" ".join(corpus.read_lines("pretrain_train.txt")).split())
    assert set(corpus.TEST_ADJECTIVES) <= pretraining
    assert not {"review", "sentiment", ":"} & pretraining  # the task's format is new to the base


def test_loads_in_8bit_on_cpu(tokenizer):
    """bitsandbytes' CPU backend loads the model in 8-bit: Linear8bitLt layers, finite logits."""
    bnb = pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(  # float16 activations: what int8 matmul expects
        TINY_DIR, quantization_config=BitsAndBytesConfig(load_in_8bit=True), dtype=torch.float16
    )
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear8bitLt)
    batch = tokenizer(["the soup was delicious . i"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.float()
        reference = AutoModelForCausalLM.from_pretrained(TINY_DIR)(**batch).logits
    assert torch.isfinite(logits).all()
    assert (logits.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.8


@pytest.mark.slow
def test_rebuild_matches_model_card(tmp_path):
    """`python -m loracourse.build_tiny --out DIR` rebuilds a model of the quality the card states."""
    subprocess.run(
        [sys.executable, "-m", "loracourse.build_tiny", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT_S,
    )
    for name in ("tokenizer.json", "config.json"):  # the same tokenizer and architecture
        assert json_without_version(tmp_path / name) == json_without_version(TINY_DIR / name), name
    claimed, rebuilt = card_numbers(TINY_DIR), card_numbers(tmp_path)
    assert rebuilt["valid_loss"] <= claimed["valid_loss"] + 0.05
    assert rebuilt["valid_loss"] <= rebuilt["unigram_loss"] - 2.0
    assert rebuilt["base_test_em"] <= 0.2
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    valid = build_tiny.pack(tokenizer, corpus.read_lines("pretrain_valid.txt"), 64)
    assert build_tiny.eval_loss(model, valid) == pytest.approx(rebuilt["valid_loss"], abs=1e-3)


@pytest.mark.slow
def test_heldout_score_needs_pretraining(tokenizer):
    """Control for lesson 1's task: the same LoRA on a randomly initialised Llama does not transfer to held-out
    adjectives (lesson 1's own fine-tune of the pretrained model is checked on its run: tests/lessons)."""
    torch.manual_seed(0)
    model, _ = lora_finetune(LlamaForCausalLM(AutoConfig.from_pretrained(TINY_DIR)), tokenizer)
    task = sentiment_task()
    assert exact_match(model, tokenizer, task) <= 0.75
    for example in task.test[:6]:  # the teacher-forced score agrees with greedy generation
        assert (predict(model, tokenizer, task, example) == task.format(example)[1]) == (
            exact_match(model, tokenizer, task, [example]) == 1.0
        )


def test_batches_pad_with_eos_when_a_tokenizer_has_no_pad_token(tokenizer):
    """Llama-2's tokenizer has no pad token: collate and predict fall back to eos instead of failing."""
    from loracourse.train import collate

    no_pad = AutoTokenizer.from_pretrained(TINY_DIR)
    no_pad.pad_token = None
    task = sentiment_task()
    examples = task.test[:3] + [{"review": "the soup was really really delicious .", "label": "positive"}]
    batch, reference = collate(no_pad, task, examples), collate(tokenizer, task, examples)
    assert no_pad.pad_token_id == no_pad.eos_token_id
    assert torch.equal(batch["labels"], reference["labels"])
    assert torch.equal(batch["attention_mask"], reference["attention_mask"])
    assert (batch["input_ids"][reference["attention_mask"] == 0] == no_pad.eos_token_id).all()
