"""One submission, executed in a process of its own: what each of `python -m grader.grade`'s workers runs.

    python -m grader.worker RESULT < pickled (Job, Settings)

It executes the submission (grader.execute.run_job, in the sandbox) and writes the pickled `Executed` to RESULT.
A plain process per submission, rather than multiprocessing's Pool, so that an interrupted run can stop its
workers at once: Pool.terminate() hung when Ctrl-C came while a spawned worker was still starting (it waited
on the task queue's lock, which the terminating parent held).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    result = Path((argv or sys.argv[1:])[0])
    job, settings = pickle.load(sys.stdin.buffer)
    try:
        from grader.check import nbgrader_config
        from grader.execute import Executed, run_job

        try:
            done = run_job(job, settings, nbgrader_config())
        except Exception as err:  # the grader itself failed on it: listed as not graded, the others go on
            done = Executed(error=f"the grader failed on it ({type(err).__name__}: {err})"[:300])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it, once
        return 130
    result.write_bytes(pickle.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
