"""JupyterLab for the course: learners in work/ with nbgrader's Validate, instructors with its formgrader.

`python -m grader.lab` (make lab, after grader.workspace) and `python -m grader.lab --instructor`
(make lab-instructor). Nothing is written to the user's own Jupyter folders; the launch points to:

- grader/jupyterlab/overrides.json, as JupyterLab's application settings folder (`LabApp.app_settings_dir`):
  the course's defaults (no "get notified about Jupyter news?" pop-up, no update check: the course is offline).
  A learner's own settings still win over them.
- a Jupyter config folder written for this launch under build/lab/<mode>/ and put first on
  JUPYTER_CONFIG_PATH: which of nbgrader's extensions load (learners: Validate only), and an
  nbgrader_config.py that loads the course's grader/nbgrader_config.py (cell timeout, kernels on local
  sockets), so that Validate runs a lesson as `make check` does; for instructors it also names the gradebook.

Arguments after the course's own (e.g. `--IdentityProvider.token=...`) go to `jupyter lab` unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from grader import kernel_config
from grader.course import CONFIG_FILE, REPO_ROOT, db_url, tool_env
from grader.workspace import WORKSPACE

APP_SETTINGS = Path(__file__).resolve().parent / "jupyterlab"  # holds overrides.json
DEFAULT_PORT = 8888  # JupyterLab's own default; when taken, it tries the next ones (ServerApp.port_retries)

# nbgrader's parts (server extension modules, JupyterLab plugins) and who sees them. The assignment and
# course lists need nbgrader's exchange (a shared folder of a JupyterHub class), which this course does not use.
SERVER_EXTENSIONS = ("formgrader", "assignment_list", "course_list", "validate_assignment")
LAB_PLUGINS = ("formgrader", "assignment-list", "course-list", "create-assignment", "menu", "validate-assignment")
SHOWN = {
    "learner": {"validate_assignment", "validate-assignment"},
    "instructor": {"formgrader", "validate_assignment", "create-assignment", "menu", "validate-assignment"},
}


def gradebook(build: Path) -> Path:
    """The gradebook the formgrader shows: the last `make grade` run's, else a fresh one listing the lessons only."""
    graded = build / "grading" / "gradebook.db"
    return graded if graded.is_file() else build / "lab" / "gradebook.db"


def write_config(mode: str, build: Path) -> Path:
    """Write the Jupyter config folder of one launch (learner or instructor); return it."""
    folder = build / "lab" / mode
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    shown = SHOWN[mode]
    server = {f"nbgrader.server_extensions.{name}": name in shown for name in SERVER_EXTENSIONS}
    disabled = {f"@jupyter/nbgrader:{name}": True for name in LAB_PLUGINS if name not in shown}
    # Kernels on local sockets, as everywhere in the course (grader/__init__.py): over TCP, ipykernel warns.
    server_config = {"ServerApp": {"jpserver_extensions": server}, "KernelManager": kernel_config()}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server_config))
    (folder / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    lines = [
        "c = get_config()  # noqa: F821 (written by grader/lab.py for one launch)",
        f"load_subconfig({str(CONFIG_FILE)!r})",
    ]
    if mode == "instructor":
        db = gradebook(build)
        db.parent.mkdir(parents=True, exist_ok=True)
        lines.append(f"c.CourseDirectory.db_url = {db_url(db)!r}")
    (folder / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    return folder


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on host:port (a quick bind; JupyterLab itself decides)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def lab_command(root: Path, port: int, open_browser: bool, extra: list[str]) -> list[str]:
    """The `jupyter lab` command line of one launch."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    return [
        jupyter,
        "lab",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        f"--LabApp.app_settings_dir={APP_SETTINGS}",
        *(["--no-browser"] if not open_browser else []),
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        *extra,
    ]


def lab_env(config: Path) -> dict[str, str]:
    """The environment of one launch: the venv's tools first, the launch's config folder first on the config path."""
    env = tool_env()
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(config), env.get("JUPYTER_CONFIG_PATH", "")]))
    return env


def main(argv: list[str] | None = None) -> int:
    """Start JupyterLab for a learner (default) or an instructor; it runs until Control-C."""
    parser = argparse.ArgumentParser(prog="python -m grader.lab", description=__doc__.splitlines()[0])
    parser.add_argument("--instructor", action="store_true", help="serve the course with nbgrader's formgrader")
    parser.add_argument("--dir", type=Path, default=WORKSPACE, help="learner's folder to serve (default: work/)")
    parser.add_argument("--build", type=Path, default=REPO_ROOT / "build", help="course build folder (default: build/)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to try first (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args, extra = parser.parse_known_args(argv)
    mode = "instructor" if args.instructor else "learner"
    # The formgrader works only on a course folder inside the folder JupyterLab serves: instructors get the course.
    root = REPO_ROOT if args.instructor else args.dir.resolve()
    config = write_config(mode, args.build.resolve())
    if args.instructor:
        print(f"Formgrader: the lessons of {REPO_ROOT / 'solutions'}, gradebook {gradebook(args.build.resolve())}")
        print("  open it from the Nbgrader menu, or at /formgrader on the address below")
    if not port_is_free(args.port):
        print(f"Port {args.port} is taken: JupyterLab takes the next free one; open the address it prints below.")
    print(f"JupyterLab ({mode}) on {root}; Control-C twice stops it", flush=True)
    cmd = lab_command(root, args.port, not args.no_browser, extra)
    os.execve(cmd[0], cmd, lab_env(config))  # JupyterLab takes over this process: Control-C reaches it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
