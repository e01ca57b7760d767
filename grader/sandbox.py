"""The sandbox a submission's kernel runs in: bubblewrap (bwrap) around ipykernel, with resource limits.

nbgrader has no sandbox of its own: a submission runs as the grader's user, with the course, the gradebook and
the other submissions within reach. Here each kernel is started through a kernelspec written for it alone
(`write_kernelspec`), whose argv is `bwrap ... -- prlimit ... -- <venv python> -m ipykernel_launcher -f ...`:

- visible, read-only: /usr (and the /bin, /lib symlinks), a few files of /etc, the Python the venv was made
  from, the venv, and the installed `loracourse/` package folder (the editable install points at it), nothing
  else of the course: no solutions/, no build/, no gradebook, no other student's notebook;
- visible, read-write: the submission's own working folder (its notebook and the lesson's files) and the
  kernel's private runtime folder (connection file and IPC sockets); a private tmpfs for /tmp and HOME;
- no network (`--unshare-all`: the kernel talks to its client over IPC unix sockets, which are files and work
  across network namespaces), its own PID namespace, killed with its parent (`--die-with-parent`);
- an environment of its own (`--clearenv`): PATH, HOME, thread counts, offline switches; none of the grader's
  variables (tokens, keys);
- limits (prlimit, util-linux): address space, processes, file size, open files.

Interrupts go over the kernel's control channel (`interrupt_mode: message`): a signal would reach bwrap, which
does not forward it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "loracourse-sandbox"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install -y bubblewrap; Fedora: dnf install bubblewrap)"
ETC_FILES = (
    "ld.so.cache",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "group",
    "hosts",
    "alternatives",
    "ssl/certs",
    "fonts",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one kernel."""

    memory_bytes: int = 8 * 2**30  # address space; torch and a tiny model need about 3 GiB of it
    processes: int = 256  # tasks the kernel's user may have (threads count too)
    file_bytes: int = 256 * 2**20  # largest file the kernel may write
    open_files: int = 1024


def bwrap() -> str | None:
    """The bwrap executable, or None when bubblewrap is not installed."""
    return shutil.which("bwrap")


def bwrap_works() -> str:
    """'' when bwrap can make a sandbox here, else why not (one line)."""
    import subprocess

    if not bwrap():
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    done = subprocess.run(
        [bwrap(), "--unshare-all", "--ro-bind", "/", "/", "--", "true"], capture_output=True, text=True
    )
    return "" if done.returncode == 0 else f"bwrap cannot make a sandbox here: {done.stderr.strip()[:200]}"


def package_folder() -> Path:
    """The folder of the installed course package (an editable install points into the repository)."""
    spec = importlib.util.find_spec("loracourse")  # found, not imported: importing it takes seconds
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def read_only_roots() -> list[Path]:
    """What the kernel sees read-only besides /usr: the base Python, the venv, the course package."""
    base = Path(sys.base_prefix).resolve()
    roots = [Path(sys.prefix), package_folder()]
    if not base.is_relative_to(Path("/usr")):
        roots.insert(0, base)
    return roots


def environment(threads: int) -> dict[str, str]:
    """The kernel's whole environment."""
    return {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": str(threads),  # loracourse.env.setup sizes torch from it
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # no debugger warning on stderr at kernel start
        "MPLCONFIGDIR": "/tmp/home/.matplotlib",
    }


def argv(work: Path, runtime: Path, threads: int, limits: Limits) -> list[str]:
    """The kernel's command line: bwrap, prlimit, then ipykernel ({connection_file} is filled in by Jupyter)."""
    cmd = [bwrap() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin", "lib32", "libx32"):
        if (Path("/") / link).is_symlink():
            cmd += ["--symlink", str((Path("/") / link).readlink()), f"/{link}"]
        elif (Path("/") / link).is_dir():
            cmd += ["--ro-bind", f"/{link}", f"/{link}"]
    for name in ETC_FILES:
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    for root in read_only_roots():
        cmd += ["--ro-bind", str(root), str(root)]
    cmd += ["--bind", str(work), str(work), "--bind", str(runtime), str(runtime), "--chdir", str(work)]
    for name, value in environment(threads).items():
        cmd += ["--setenv", name, value]
    cmd += ["--", "prlimit", f"--as={limits.memory_bytes}", f"--nproc={limits.processes}"]
    cmd += [f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--"]
    return [*cmd, str(Path(sys.prefix) / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def unsandboxed_argv() -> list[str]:
    """The kernel's command line without a sandbox (make grade UNSAFE=1): the venv's plain ipykernel."""
    return [str(Path(sys.prefix) / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def write_kernelspec(kernels: Path, kernel_argv: list[str]) -> Path:
    """A kernelspec folder under kernels/ for one kernel; returns kernels/ (a KernelSpecManager's kernel_dirs)."""
    spec = kernels / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    body = {"argv": kernel_argv, "display_name": "Python 3 (sandboxed grading)", "language": "python"}
    body["interrupt_mode"] = "message"  # a SIGINT would reach bwrap, which does not forward it
    (spec / "kernel.json").write_text(json.dumps(body, indent=1))
    return kernels
