"""A worker of `python -m grader.grade`: executes submissions, one after another, each in its own sandbox.

    python -m grader.worker    (stdin: pickled (Job, Settings) pairs; stdout: one pickled Executed for each)

The process lives for the whole grading run, so that its imports (nbgrader, nbclient: about 2 s of CPU) are paid
once, not once per submission; every submission still gets a fresh sandboxed kernel (grader.execute.run_job).
A plain process rather than multiprocessing's Pool, so that an interrupted run can stop its workers at once:
Pool.terminate() hung when Ctrl-C came while a spawned worker was still starting (it waited on the task queue's
lock, which the terminating parent held). The grader kills a worker to stop it; its kernel dies with it
(bwrap --die-with-parent).
"""

from __future__ import annotations

import os
import pickle
import sys


def main() -> int:
    """Answer each job read from stdin with its Executed on the original stdout, until stdin is closed."""
    # What the libraries print must not mix with the answers: the answers get stdout's file, stdout goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        from grader.converters import nbgrader_config
        from grader.execute import Executed, run_job

        config = nbgrader_config()
        while True:
            try:
                job, settings = pickle.load(sys.stdin.buffer)
            except EOFError:  # the grader has no more work
                return 0
            try:
                done = run_job(job, settings, config)
            except Exception as err:  # the grader itself failed on it: listed as not graded, the others go on
                done = Executed(error=f"the grader failed on it ({type(err).__name__}: {err})"[:300])
            pickle.dump(done, answers)
            answers.flush()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it, once
        return 130


if __name__ == "__main__":
    sys.exit(main())
