"""The course's GPU check: what a GPU user runs, measured. Needs CUDA; downloads nothing.

    make gpu-check      (python -m tools.gpu_check [--skip-7b] [--out build/gpu-check.json])

Without CUDA it prints one line with "skipped" and exits 0, so that CI stays green. On a GPU it measures:

1. tiny8bit: the tiny model loaded in 8-bit (`quantization_config=BitsAndBytesConfig(load_in_8bit=True)`),
   prepared with `prepare_model_for_kbit_training`, LoRA-trained for a few steps on the GPU.
2. lesson1-tiny: lesson 1's solution notebook executed by papermill on the GPU, with its defaults.
   Then every lesson of solutions/ executed on the GPU with the tiny model (lessons-tiny).
3. llama2-7b-8bit: a model with Llama-2-7b's exact architecture (random weights, saved to a local folder with
   the tiny tokenizer, since nothing can be downloaded) loaded in 8-bit with from_pretrained: load time and
   memory footprint, against the exact int8 figure from the twin (expected_int8_bytes); wrapped with the
   tutorial's LoraConfig (r=8, q_proj and v_proj), training steps at the T4 preset's batch and sequence length
   (grader/presets.toml): step time and peak GPU memory.
4. llama2-7b-merged: the same model in bf16, LoRA merged (merge_and_unload) against the base: forward latency.
5. lesson1-7b: lesson 1 again, papermill -p model_name_or_path <that 7B folder> (bf16 on the GPU).
Results go to --out as JSON and to stdout; the README quotes that file.

Needs, besides torch with CUDA: the pins of requirements.txt for transformers (5.22.2), peft (0.21.2) and
bitsandbytes (0.50.2), plus accelerate, matplotlib and papermill with an ipykernel (it executes the lessons).
On a machine without them, install those three wheels into a folder and put it first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
LESSON1 = ROOT / "solutions" / "01-lora-theory" / "01-lora-theory.ipynb"


def gib(n_bytes: float) -> float:
    """Bytes in GiB, rounded for a report."""
    return round(n_bytes / 2**30, 2)


def run_lesson(path: Path, out: Path, **parameters) -> dict:
    """Execute a lesson with papermill (its parameters overridden, as `papermill -p` does); time it."""
    import papermill as pm

    start, error = time.perf_counter(), ""
    try:
        pm.execute_notebook(
            str(path), str(out), parameters=parameters, kernel_name="python3", cwd=str(path.parent), progress_bar=False
        )
    except Exception as err:  # report it: the other checks still run
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return {"seconds": round(time.perf_counter() - start, 1), "error": error, "executed": str(out)}


def tiny_in_8bit() -> dict:
    """Tiny model in 8-bit on CUDA, LoRA on q_proj/v_proj, 30 steps of the lesson-1 task."""
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from loracourse.models import resolve_model
    from loracourse.train import exact_match, sentiment_task, train_lora

    path = resolve_model("tiny")
    model = AutoModelForCausalLM.from_pretrained(
        path, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cuda"
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    n8 = sum(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    task = sentiment_task()
    losses = train_lora(model, tokenizer, task, max_steps=30, lr=3e-3, show_progress=False)
    return {
        "linear8bit_layers": n8,
        "footprint_bytes": model.get_memory_footprint(),
        "loss_first": round(losses[0], 3),
        "loss_last": round(losses[-1], 3),
        "exact_match_after_30_steps": exact_match(model, tokenizer, task),
    }


def expected_int8_bytes(hub_id: str = "meta-llama/Llama-2-7b-hf") -> dict[str, int]:
    """Exact bytes of the twin loaded in 8-bit: decoder Linears as int8 (1 byte a weight) plus one fp32 scale per
    output row, every other parameter 16-bit. `footprint` leaves the scales out, as get_memory_footprint() does."""
    from loracourse.twins import build_twin

    model = build_twin(hub_id)  # meta device: shapes only
    int8 = rows = other = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name != "lm_head":
            int8 += module.weight.numel()
            rows += module.out_features
    other = model.num_parameters() - int8
    return {"footprint": int8 + 2 * other, "with_scales": int8 + 4 * rows + 2 * other}


def t4_preset() -> dict[str, object]:
    """The T4 preset of grader/presets.toml: the batch and sequence length the 7B training step uses."""
    from grader.presets import load_presets

    return load_presets()["t4"]


def make_llama2_folder(folder: Path) -> float:
    """Save a random-weight model of Llama-2-7b's architecture (bf16) plus the tiny tokenizer; return seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loracourse.models import resolve_model
    from loracourse.twins import twin_config

    start = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(twin_config("meta-llama/Llama-2-7b-hf"), dtype=torch.bfloat16)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("tiny")).save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return round(time.perf_counter() - start, 1)


def llama2_in_8bit(folder: Path) -> dict:
    """The tutorial's corrected code on a Llama-2-7b-shaped folder: 8-bit load, LoRA, one training step."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        folder, device_map="auto", dtype=torch.bfloat16, quantization_config=BitsAndBytesConfig(load_in_8bit=True)
    )
    load_s = time.perf_counter() - start
    footprint = model.get_memory_footprint()
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj"],
            lora_dropout=0.05,
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    trainable, total = model.get_nb_trainable_parameters()
    preset = t4_preset()
    batch = torch.randint(0, 600, (preset["batch_size"], preset["seq_len"]), device="cuda")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    expected = expected_int8_bytes()
    result = {
        "load_seconds": round(load_s, 1),
        "footprint_bytes": footprint,
        "footprint_gib": gib(footprint),
        "expected_footprint_bytes_from_twin": expected["footprint"],
        "expected_bytes_with_scales_from_twin": expected["with_scales"],
        "batch_x_seq_len": f"{preset['batch_size']} x {preset['seq_len']} (t4 preset)",
        "trainable": trainable,
        "all_params": total,
        "train_step_seconds": round(min(times), 3),
        "peak_gpu_gib_during_training": gib(torch.cuda.max_memory_allocated()),
    }
    del model, optimizer
    torch.cuda.empty_cache()
    return result


def forward_ms(model: torch.nn.Module, batch: torch.Tensor, repeats: int = 10) -> float:
    """Median milliseconds of one forward pass (no grad), after a warm-up."""
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(input_ids=batch)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return round(1000 * sorted(times[1:])[repeats // 2], 2)


def merged_vs_base(folder: Path) -> dict:
    """Forward latency of the 7B model in bf16: base, with an unmerged LoRA (r=8, q and v), merged."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map="cuda")
    batch = torch.randint(0, 600, (1, 256), device="cuda")
    result = {"base_ms": forward_ms(model, batch)}
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # B = 0 at init: give it values, so that merging changes the weights
            torch.nn.init.normal_(param, std=0.01)
    result["unmerged_lora_ms"] = forward_ms(model, batch)
    model = model.merge_and_unload()
    result["merged_ms"] = forward_ms(model, batch)
    del model
    torch.cuda.empty_cache()
    return result


def every_lesson_tiny(executed: Path) -> dict:
    """Every lesson of solutions/ executed on the GPU with its defaults (the tiny model)."""
    lessons = sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    return {p.stem: run_lesson(p, executed / f"{p.stem}-tiny.ipynb") for p in lessons}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu-check.json")
    parser.add_argument("--skip-7b", action="store_true", help="only the tiny-model checks")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/llama2-7b-random"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu-check: skipped: no CUDA GPU here (torch {torch.__version__}); the GPU figures need one")
        return 0
    import bitsandbytes
    import peft
    import transformers

    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bitsandbytes.__version__,
    }
    executed = args.out.parent / "gpu-executed"
    executed.mkdir(parents=True, exist_ok=True)
    steps = [("tiny8bit", tiny_in_8bit), ("lessons-tiny", lambda: every_lesson_tiny(executed))]
    if not args.skip_7b:
        steps += [
            ("make-7b-folder-seconds", lambda: make_llama2_folder(args.folder)),
            ("llama2-7b-8bit", lambda: llama2_in_8bit(args.folder)),
            ("llama2-7b-merged", lambda: merged_vs_base(args.folder)),
            (
                "lesson1-7b",
                lambda: run_lesson(LESSON1, executed / "lesson1-7b.ipynb", model_name_or_path=str(args.folder)),
            ),
        ]
    for name, step in steps:
        try:
            report[name] = step()
        except Exception as err:  # report and go on: one failure should not hide the other results
            report[name] = {"error": f"{type(err).__name__}: {err}"}
        print(name, json.dumps(report[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    shutil.rmtree(args.folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
