"""What both searches share when they drive Locust from outside: the command line, the run folder, the run.

A search is `locust -f <locustfile>,hone_in.py --headless` with its CSV history and verdict written into one
run folder, beside command.txt (how to reproduce it) and machine.txt (what it ran on).
"""

import argparse
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from lampi_load.results import new_run_dir, results_root

LOADTESTING = Path(__file__).resolve().parents[2]
REPO = LOADTESTING.parent
# Seconds a run may overrun its --time-limit (ramping down, writing the verdict) before it counts as hung.
GRACE = 300


def split_locust_args(argv=None) -> tuple[list[str], list[str]]:
    """This command's own arguments, and those after `--`, which go to Locust unchanged."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def argument_parser(description: str, host: str, host_help: str, time_limit: float, name: str):
    """The options every search takes: --host, --time-limit, --name and --results-root."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=host, help=host_help)
    parser.add_argument(
        "--time-limit", type=float, default=time_limit, help=f"seconds the search may take (default {time_limit:g})"
    )
    parser.add_argument("--name", default=name, help="suffix of the results folder name")
    parser.add_argument(
        "--results-root", type=Path, help="where result folders go (default $LAMPI_RESULTS_DIR or loadtesting/output)"
    )
    return parser


def unused_port() -> int:
    """A loopback TCP port no one listens on now, as the kernel picks one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def locust_command(locustfile: str, args, results_dir: Path, options: list[str], extra: list[str]) -> list[str]:
    """`locust -f <locustfile>,hone_in.py` headless against args.host, writing into results_dir; `options` are the
    search's own, `extra` the user's (last, so they win); pinned to $LAMPI_LOADGEN_CPUS when set."""
    files = f"{LOADTESTING / locustfile},{LOADTESTING / 'hone_in.py'}"
    command = [str(Path(sys.executable).parent / "locust"), "-f", files]
    command += ["--headless", "--only-summary", "--host", args.host]
    command += ["--csv", str(results_dir / "locust"), "--csv-full-history"]
    command += ["--hone-results-dir", str(results_dir), "--hone-time-limit", str(args.time_limit), *options]
    distributed = any(arg == "--processes" or arg.startswith("--processes=") for arg in extra)
    if distributed and not any(arg.startswith(("--master-bind-port", "--master-port")) for arg in extra):
        # Locust's default master port, 5557, is any other Locust's on this machine: this run's workers would join
        # another run's master, or wait forever for one that could not bind it.
        port = str(unused_port())
        command += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port]
    # A search provokes failures on purpose: Locust's own exit code would always say 1.
    command += ["--exit-code-on-error", "0", *extra]
    cpus = os.environ.get("LAMPI_LOADGEN_CPUS")
    return ["taskset", "-c", cpus, *command] if cpus else command


def machine_description(server_cpus: str | None = None, loadgen_cpus: str | None = None) -> str:
    """One line: host name, CPUs, memory, kernel, and which CPUs the server and the generator were pinned to
    (taskset lists; by default LAMPI_SERVER_CPUS and LAMPI_LOADGEN_CPUS, as `make up` and the runs pin them)."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    pinning = server_cpus or os.environ.get("LAMPI_SERVER_CPUS"), loadgen_cpus or os.environ.get("LAMPI_LOADGEN_CPUS")
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu_model}), {memory_kb / 2**20:.1f} GiB, "
        f"Linux {platform.release()}; server CPUs {pinning[0] or 'any'}, load generator CPUs {pinning[1] or 'any'}"
    )


def start_run(tool: str, module: str, args, argv: list[str], extra: list[str], make_command) -> tuple[Path, list]:
    """Creates the run's results folder with command.txt (`python -m <module> <argv>`, how to reproduce it) and
    machine.txt; returns the folder and the Locust command `make_command(args, folder, extra)` builds for it."""
    results_dir = new_run_dir(args.name, args.results_root or results_root())
    command = make_command(args, results_dir, extra)
    (results_dir / "command.txt").write_text(
        f"python -m {module} " + shlex.join([*argv, *(["--", *extra] if extra else [])]) + "\n"
        "# which ran: " + shlex.join(command) + "\n"
    )
    (results_dir / "machine.txt").write_text(machine_description() + "\n")
    print(f"{tool}: searching {args.host} for at most {args.time_limit:.0f} s; results in {results_dir}")
    return results_dir, command


def run_search(tool: str, command: list[str], results_dir: Path, time_limit: float) -> bool:
    """Runs Locust (its log, the search's decisions among it, streams to this terminal); whether it left a verdict."""
    finished = subprocess.run(command, cwd=REPO, timeout=time_limit + GRACE)
    if finished.returncode != 0 or not (results_dir / "verdict.json").exists():
        print(f"{tool}: error: Locust exited {finished.returncode} without a verdict", file=sys.stderr)
        return False
    return True
