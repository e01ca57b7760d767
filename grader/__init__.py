"""grader: release, run, grade and check the course's notebooks with nbgrader.

`python -m grader.release` regenerates notebooks/ (the student copies) from solutions/;
`python -m grader.run` executes every lesson and autogrades it; `python -m grader.grade DIR`
autogrades a folder of submissions and writes grades and feedback; `python -m grader.check [NB]`
grades a learner's notebooks as grade would, without keeping anything; `python -m grader.workspace`
makes the learner's copies. The Makefile calls them all.
"""

import os

from jupyter_core.paths import jupyter_runtime_dir

CELL_TIMEOUT_S = 300  # seconds one cell may run while grading: the slowest honest cell, with room
COURSE_ID = "lora-in-practice"


def kernel_config() -> dict[str, str]:
    """KernelManager settings for the kernels the course starts: local sockets (IPC) where the OS has them.

    Over TCP, ipykernel rightly warns that code and outputs travel unencrypted; jupyter_client supports IPC on
    POSIX systems only. The socket files need an absolute path (a kernel runs in its notebook's folder, its client
    elsewhere), in Jupyter's runtime folder, which is made here if this machine never ran Jupyter.
    """
    if os.name != "posix":
        return {}
    runtime = jupyter_runtime_dir()
    os.makedirs(runtime, exist_ok=True)
    return {"transport": "ipc", "ip": os.path.join(runtime, "loracourse-kernel")}
