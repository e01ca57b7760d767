"""The course's GPU check: what a GPU user runs, measured. Needs CUDA; downloads nothing.

    python tools/gpu_check.py [--skip-7b] [--out build/gpu-check.json]

1. tiny8bit: the tiny model loaded in 8-bit (`quantization_config=BitsAndBytesConfig(load_in_8bit=True)`),
   prepared with `prepare_model_for_kbit_training`, LoRA-trained for a few steps on the GPU.
2. lesson1-tiny: lesson 1's solution notebook executed by papermill on the GPU, with its defaults.
3. llama2-7b-8bit: a model with Llama-2-7b's exact architecture (random weights, saved to a local folder with
   the tiny tokenizer, since nothing can be downloaded) loaded in 8-bit with from_pretrained, wrapped with the
   tutorial's LoraConfig, one training step: load time, memory footprint, peak GPU memory, step time.
4. lesson1-7b: lesson 1 again, papermill -p model_name_or_path <that 7B folder> (bf16 on the GPU).
Results go to --out as JSON and to stdout.

Needs, besides torch with CUDA: the pins of requirements.txt for transformers (5.22.2), peft (0.21.2) and
bitsandbytes (0.50.2), plus accelerate, matplotlib and papermill with an ipykernel (it executes the lessons).
On a machine without them, install those three wheels into a folder and put it first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    batch = torch.randint(0, 600, (4, 256), device="cuda")
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
    result = {
        "load_seconds": round(load_s, 1),
        "footprint_bytes": footprint,
        "footprint_gib": gib(footprint),
        "trainable": trainable,
        "all_params": total,
        "train_step_seconds_batch4x256": round(min(times), 3),
        "peak_gpu_gib_during_training": gib(torch.cuda.max_memory_allocated()),
    }
    del model, optimizer
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu-check.json")
    parser.add_argument("--skip-7b", action="store_true", help="only the tiny-model checks")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/llama2-7b-random"))
    args = parser.parse_args()
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
    steps = [("tiny8bit", tiny_in_8bit), ("lesson1-tiny", lambda: run_lesson(LESSON1, executed / "lesson1-tiny.ipynb"))]
    if not args.skip_7b:
        steps += [
            ("make-7b-folder-seconds", lambda: make_llama2_folder(args.folder)),
            ("llama2-7b-8bit", lambda: llama2_in_8bit(args.folder)),
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


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
