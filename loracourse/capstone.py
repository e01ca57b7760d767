"""The capstone's training step, as a module the notebook imports and a script that scales out. Built in lesson 7.

One function, `finetune`, does what a practitioner's training script does with the Hugging Face `Trainer`: load the
base, wrap it with LoRA, train on the course's sentiment task, save the adapter once. The notebook calls it; so does
`main()`, so that these commands train exactly as the notebook does:

    python -m loracourse.capstone --output build/capstone-script                  # one process (CPU or one GPU)
    torchrun --nproc_per_node 2 -m loracourse.capstone --output build/cap-ddp    # two processes (gloo on a CPU)
    accelerate launch --num_processes 4 -m loracourse.capstone --model meta-llama/Llama-2-7b-hf --output DIR

Nothing here is home-made where the Trainer, accelerate or torch.distributed does it: the Trainer wraps the model in
DistributedDataParallel, gives each process its share of the data (a distributed sampler), averages the gradients
and saves on the main process only (`trainer.save_model`). The module adds what a lesson needs around it: one-line
errors for bad input (a folder that is no adapter, an adapter for another base, a merge on a model without
adapters), and files written atomically (a crash leaves the previous report, never half a file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from .errors import CourseError
from .progress import in_notebook
from .train import IGNORE, Task, encode, exact_match, sentiment_task, with_pad_token

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what PeftModel.save_pretrained writes


class NotAnAdapter(CourseError, FileNotFoundError):
    """A folder given as a LoRA adapter holds no adapter_config.json / adapter_model.safetensors."""


class AdapterMismatch(CourseError, ValueError):
    """An adapter whose shapes or module names do not fit the base it is loaded into."""


class NotAPeftModel(CourseError, TypeError):
    """A merge asked of a model that has no adapters to merge."""


@dataclass
class CapstoneConfig:
    """Everything the training step needs; the script's flags and the notebook's parameters map onto it."""

    model: str = "tiny"  # "tiny", a local folder or a hub id
    output_dir: str = "build/capstone/adapter"  # where the adapter is saved (once, by the main process)
    max_steps: int = 60  # optimizer steps
    lr: float = 3e-3  # AdamW's learning rate, decayed linearly to 0 (the Trainer's default schedule)
    batch_size: int = 16  # examples per process and step: the global batch is batch_size x processes
    r: int = 8
    lora_alpha: int = 16
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    eval_size: int = 100  # held-out examples scored (the first ones of the test split)
    logging_steps: int = 5  # the Trainer logs the mean loss of every logging_steps steps
    seed: int = 0


def device_for_process() -> str:
    """This process's device: its own GPU under torchrun / accelerate (LOCAL_RANK), else cuda or cpu."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def load_base(model_name_or_path: str, device: str) -> tuple[nn.Module, Any]:
    """A fresh base model (fp32 on a CPU, bf16 on a GPU) and its tokenizer, padding on the right with a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .models import require_causal_lm, resolve_model

    path = require_causal_lm(resolve_model(model_name_or_path))
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    tokenizer = with_pad_token(AutoTokenizer.from_pretrained(path))
    tokenizer.padding_side = "right"  # the labels are read left to right
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device)
    model.config.use_cache = False  # training needs no key/value cache
    return model, tokenizer


def heldout(task: Task, eval_size: int) -> list[dict[str, str]]:
    """The held-out examples every run scores: the first eval_size of the test split (never trained on)."""
    return task.test[:eval_size]


def split_fingerprint(examples: list[dict[str, str]]) -> str:
    """A short hash of a list of examples: two runs saw the same split exactly when their fingerprints agree."""
    return hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16]


def training_arguments(config: CapstoneConfig, device: str):
    """The Trainer's arguments for `config`: no checkpoints, no tracker, gloo between CPU processes."""
    from transformers import TrainingArguments

    on_cpu = device == "cpu"
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # set by torchrun and accelerate launch
    return TrainingArguments(
        output_dir=config.output_dir,  # only trainer.save_model writes there: save_strategy="no"
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        weight_decay=0.0,
        logging_steps=config.logging_steps,
        save_strategy="no",  # the adapter is saved once, at the end, with trainer.save_model
        report_to="none",
        seed=config.seed,
        use_cpu=on_cpu,
        ddp_backend="gloo" if on_cpu and distributed else None,  # between CPU processes; None: nccl between GPUs
        label_names=["labels"],  # a PeftModel hides the base's signature, so name the labels
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every adapter gets a gradient: spare DDP its extra graph traversal
    )


def saved_bar_callback():
    """The Trainer's own text progress bar (ProgressCallback), drawn as a bar that a saved notebook keeps at 100 %.

    In a notebook the Trainer shows NotebookProgressCallback, an HTML table whose saved text form is only
    "<IPython.core.display.HTML object>"; ProgressCallback draws tqdm, and the course's SavedBar (progress.py) is a
    tqdm whose saved output is its last frame. The logged losses are plotted from trainer.state.log_history instead
    of printed under the bar.
    """
    from transformers.trainer_callback import ProgressCallback

    from .progress import SavedBar

    class SavedBarCallback(ProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.training_bar = SavedBar(total=state.max_steps, desc="Trainer")
            self.current_step = 0

        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # plotted from trainer.state.log_history

    return SavedBarCallback


def finetune(config: CapstoneConfig, show_progress: bool = True):
    """The training step: fresh base + LoRA, the Trainer on the sentiment task, the adapter saved once. The Trainer."""
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, set_seed

    set_seed(config.seed)
    device = device_for_process()
    model, tokenizer = load_base(config.model, device)
    lora = LoraConfig(r=config.r, lora_alpha=config.lora_alpha, target_modules=list(config.target_modules))
    model = get_peft_model(model, lora)
    task = sentiment_task()
    args = training_arguments(config, device)
    args.disable_tqdm = not show_progress
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=[encode(tokenizer, task, example) for example in task.train],
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE),
        processing_class=tokenizer,
    )
    if in_notebook() and show_progress:  # a bar the saved notebook keeps at 100 %, in place of the HTML table
        from transformers.trainer_callback import ProgressCallback
        from transformers.utils.notebook import NotebookProgressCallback

        for default in (NotebookProgressCallback, ProgressCallback):
            trainer.remove_callback(default)
        trainer.add_callback(saved_bar_callback())
    trainer.train()
    trainer.save_model(config.output_dir)  # the adapter only (PeftModel.save_pretrained), on the main process only
    return trainer


def plot_log_history(log_history: list[dict[str, float]], title: str = "LoRA with the Trainer"):
    """The loss the Trainer logged (the mean of each logging_steps steps) against the step."""
    import matplotlib.pyplot as plt

    logged = [(log["step"], log["loss"]) for log in log_history if "loss" in log]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([step for step, _ in logged], [loss for _, loss in logged], marker="o", lw=1.2)
    ax.set(xlabel="step", ylabel="training loss (nats/token)", title=title, yscale="log")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def adapter_files(folder: str | Path) -> dict[str, int]:
    """name -> bytes of the adapter's files in `folder`, or one NotAnAdapter line that says what is missing."""
    folder = Path(folder)
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        what = "does not exist" if not folder.exists() else f"has no {' and no '.join(missing)}"
        raise NotAnAdapter(
            f"{folder} {what}: it is not a LoRA adapter. Pass the folder that save_pretrained "
            f"(or trainer.save_model) wrote, the one holding {' and '.join(ADAPTER_FILES)}."
        )
    return {name: (folder / name).stat().st_size for name in ADAPTER_FILES}


def check_adapter_fits(base: nn.Module, folder: str | Path) -> None:
    """Raise one AdapterMismatch line if the adapter in `folder` was trained on a base of other names or sizes.

    PEFT would fail later, deep in load_state_dict, with a size mismatch per tensor (or, for missing modules, load
    nothing and only warn); this reads the saved shapes first, with safetensors' own reader.
    """
    from safetensors import safe_open

    adapter_files(folder)
    saved_for = json.loads((Path(folder) / "adapter_config.json").read_text()).get("base_model_name_or_path")
    with safe_open(str(Path(folder) / "adapter_model.safetensors"), framework="pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    for key, shape in shapes.items():
        if ".lora_A." not in key:
            continue
        name = key.removeprefix("base_model.model.").split(".lora_A.")[0]  # e.g. model.layers.0.self_attn.q_proj
        layer = dict(base.named_modules()).get(name)
        if layer is None or getattr(layer, "in_features", None) != shape[1]:
            found = f"has no {name}" if layer is None else f"has a {name} of {layer.in_features} inputs"
            raise AdapterMismatch(
                f"the adapter in {folder} was trained on another base ({saved_for}): its {key} is {shape}, but this "
                f"base {found}. Load the base it was trained on."
            )


def load_adapter(base: nn.Module, folder: str | Path):
    """PeftModel.from_pretrained(base, folder) for inference (frozen), after checking that it is an adapter for base."""
    from peft import PeftModel

    check_adapter_fits(base, folder)
    return PeftModel.from_pretrained(base, str(folder))


def merge(model: nn.Module) -> nn.Module:
    """model.merge_and_unload(): the base with W0 + (alpha/r) B A in every adapted layer, or one NotAPeftModel line."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise NotAPeftModel(
            f"merge needs a PeftModel (a base with LoRA adapters), got a {type(model).__name__} with no adapters: "
            f"it was never wrapped or is merged already. Load the adapter first: load_adapter(base, folder)."
        )
    return model.merge_and_unload()


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write `path` through a temporary file beside it, moved into place (os.replace) only when the block succeeds.

    A crash in the block leaves the previous file as it was, and no temporary file behind. os.replace is atomic
    on POSIX and Windows when both names are on one file system, hence the temporary file in the same folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the report private to its writer
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report_dir: str | Path, markdown: str, figure: Any, metrics: dict[str, Any]) -> dict[str, int]:
    """report.md, loss.png and metrics.json in `report_dir`, each written atomically; name -> bytes."""
    import io

    report_dir = Path(report_dir)
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    with atomic_write(report_dir / "loss.png", "wb") as f:
        f.write(png.getvalue())
    with atomic_write(report_dir / "metrics.json") as f:
        json.dump(metrics, f, indent=2)
    with atomic_write(report_dir / "report.md") as f:
        f.write(markdown)
    return {name: (report_dir / name).stat().st_size for name in ("report.md", "loss.png", "metrics.json")}


def default_report_dir(start: str | Path = ".") -> Path:
    """build/capstone of the course's checkout when `start` lies inside one, else build/capstone under `start`."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "loracourse" / "capstone.py").is_file() and (folder / "solutions").is_dir():
            return folder / "build" / "capstone"
    return start / "build" / "capstone"


def parse_args(argv: list[str] | None = None) -> CapstoneConfig:
    """The script's flags, onto a CapstoneConfig."""
    defaults = CapstoneConfig()
    parser = argparse.ArgumentParser(prog="python -m loracourse.capstone", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder for the adapter and metrics.json")
    parser.add_argument("--model", default=defaults.model, help="tiny, a local folder or a hub id")
    for name in ("max_steps", "batch_size", "r", "lora_alpha", "eval_size", "logging_steps", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    args = vars(parser.parse_args(argv))
    return CapstoneConfig(output_dir=args.pop("output"), **args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (finetune), score the held-out split, and write metrics.json beside the adapter (main process only)."""
    config = parse_args(argv)
    trainer = finetune(config)
    examples = heldout(sentiment_task(), config.eval_size)
    metrics = {
        "exact_match": exact_match(trainer.model, trainer.processing_class, sentiment_task(), examples),
        "heldout_size": len(examples),
        "heldout_fingerprint": split_fingerprint(examples),
        "world_size": trainer.args.world_size,
        "global_batch": trainer.args.per_device_train_batch_size * trainer.args.world_size,
        "max_steps": trainer.state.max_steps,
        "losses": [log["loss"] for log in trainer.state.log_history if "loss" in log],
        "config": asdict(config),
    }
    if trainer.is_world_process_zero():
        with atomic_write(Path(config.output_dir) / "metrics.json") as f:
            json.dump(metrics, f, indent=2)
    return metrics


if __name__ == "__main__":
    main()
