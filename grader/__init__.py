"""grader: release, run, grade and check the course's notebooks with nbgrader.

`python -m grader.release` regenerates notebooks/ (the student copies) from solutions/;
`python -m grader.run` executes every lesson and autogrades it; `python -m grader.grade DIR`
autogrades a folder of submissions and writes grades and feedback; `python -m grader.check [NB]`
grades a learner's notebooks as grade would, without keeping anything; `python -m grader.workspace`
makes the learner's copies. The Makefile calls them all.
"""

import os
import secrets

from jupyter_core.paths import jupyter_runtime_dir

CELL_TIMEOUT_S = 300  # seconds one cell may run while grading: the slowest honest cell, with room
COURSE_ID = "lora-in-practice"


def kernel_config() -> dict[str, str]:
    """KernelManager settings for the kernels the course starts: local sockets (IPC) where the OS has them.

    Over TCP, ipykernel rightly warns that code and outputs travel unencrypted; jupyter_client supports IPC on
    POSIX systems only. The socket files need an absolute path (a kernel runs in its notebook's folder, its client
    elsewhere), in Jupyter's runtime folder, which is made here if this machine never ran Jupyter.

    The path is new on every call. jupyter_client names a kernel's sockets PATH-1, PATH-2, ... taking the first
    numbers whose files do not exist yet, so two processes that start kernels at the same moment with one PATH
    (two `make check`s, parallel grading) bind the same files, and each client then talks to the other's kernel
    ("Invalid Signature", a kernel aborting in zmq at shutdown). A kernel started without an `ip` is no better:
    jupyter_client then uses the relative path "kernel-ipc" for every kernel.
    """
    if os.name != "posix":
        return {}
    runtime = jupyter_runtime_dir()
    os.makedirs(runtime, exist_ok=True)
    return {"transport": "ipc", "ip": os.path.join(runtime, f"loracourse-{os.getpid()}-{secrets.token_hex(4)}")}
