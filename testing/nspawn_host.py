"""A Debian host with systemd as PID 1, booted with systemd-nspawn and reached over ssh on a loopback port.

The root file system is made once by debootstrap from this machine's own apt sources and cached; each boot runs
on a copy (an overlay when the kernel allows one), so the cached root stays bare. With `--register=no` and no
private network the container shares this machine's network namespace: its servers listen on this machine's
ports, and it reaches servers on this machine's loopback.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from testing.ports import free_port

# What the cached root holds besides debootstrap's minimal base: what a cloud image boots with and Ansible needs
# to reach it (systemd as init, sshd, Python, sudo). Everything the site needs, the roles must install.
INCLUDE = ["systemd-sysv", "dbus", "openssh-server", "python3", "sudo"]
# Bump when the recipe below changes in a way the key cannot see.
RECIPE = 1
# Seconds for systemd to report the boot finished, and for an orderly poweroff.
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 30
DEBOOTSTRAP_TIMEOUT = 900
# Memory the host's changes to its root may take (a deployment writes about 1 GB: packages, the virtualenv).
LAYER_SIZE = "4g"
APT_SOURCES = Path("/etc/apt")
# Certificate authorities this machine adds to Debian's (a proxy's on the way to the package registries): the host
# trusts them too, so it reaches the registries the way this machine does, once the roles install ca-certificates.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


class HostError(Exception):
    """The host cannot be built, booted or stopped; the message is one line a person can act on."""


def release() -> str:
    """This machine's Debian release code name (bookworm), which the host runs too."""
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    if fields.get("ID", "").strip('"') != "debian" or not codename:
        raise HostError("the test host is built with debootstrap from this machine's Debian apt sources: not Debian")
    return codename


def release_sources(codename: str, apt_dir: Path = APT_SOURCES) -> tuple[str, str]:
    """This machine's apt sources for `codename` and its -updates/-security suites, as one deb822 file, and the
    mirror URI of the release itself (for debootstrap). Other sources (third-party repositories) are left out."""
    suites = re.compile(rf"^{re.escape(codename)}(-[a-z]+)?$")
    stanzas, mirror = [], ""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in (path for path in files if path.is_file()):
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", path.read_text()):
                lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
                entry = dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith(" "))
                entry = {key.strip(): value.strip() for key, value in entry.items()}
                if "deb" not in entry.get("Types", "").split():
                    continue
                kept = [suite for suite in entry.get("Suites", "").split() if suites.match(suite)]
                if kept:
                    entry["Types"], entry["Suites"] = "deb", " ".join(kept)
                    stanzas.append("\n".join(f"{key}: {value}" for key, value in entry.items()))
                    if codename in kept:
                        mirror = mirror or entry["URIs"].split()[0]
        elif path.name == "sources.list" or path.suffix == ".list":
            for line in path.read_text().splitlines():
                match = re.match(
                    r"deb\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.+)", line
                )
                if match and suites.match(match["suite"]):
                    signed = re.search(r"signed-by=(\S+)", match["options"] or "")
                    stanza = f"Types: deb\nURIs: {match['uri']}\nSuites: {match['suite']}\nComponents: {match['comps']}"
                    stanzas.append(stanza + (f"\nSigned-By: {signed[1]}" if signed else ""))
                    if match["suite"] == codename:
                        mirror = mirror or match["uri"]
    if not mirror:
        raise HostError(f"no apt source for Debian {codename} in {apt_dir}: the test host's packages come from there")
    return "\n\n".join(stanzas) + "\n", mirror


STALE_DAYS = 7
"""A cached root no run used for this many days is removed when another is built."""


def used(root: Path) -> Path:
    """The file whose modification time says when a run last used `root` (beside it: the root is booted as is)."""
    return root.with_name(f"{root.name}.used")


def recently_used(root: Path) -> bool:
    marker = used(root) if used(root).exists() else root
    return time.time() - marker.stat().st_mtime < STALE_DAYS * 86400


def cached_root(cache_dir: Path) -> Path:
    """The bare root file system, built by debootstrap on first use (a few minutes) and kept under `cache_dir`,
    keyed by the release, the apt sources and the recipe. Raises HostError if debootstrap is missing or fails."""
    codename = release()
    sources, mirror = release_sources(codename)
    recipe = {"codename": codename, "sources": sources, "include": INCLUDE, "recipe": RECIPE}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir / f"{codename}-{key}"
    if (root / "etc/os-release").exists():
        used(root).touch()
        return root
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise HostError("building the test host needs root and debootstrap (scripts/setup.sh installs it)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Two test runs at once build it once: the second waits here, then finds it.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "etc/os-release").exists():
            return root
        building = Path(tempfile.mkdtemp(prefix=f".{codename}-", dir=cache_dir))
        building.chmod(0o755)  # the host's /: its services run as other users
        try:
            command = ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", codename, building, mirror]
            result = subprocess.run(command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT)
            if result.returncode != 0:
                last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
                raise HostError(f"debootstrap {codename} failed ({result.returncode}): {last[0]}")
            (building / "etc/apt/sources.list").unlink(missing_ok=True)
            (building / "etc/apt/sources.list.d/host.sources").write_text(sources)
            # Downloaded packages go to a cache the test binds in; the root keeps none of its own.
            for deb in (building / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            building.rename(root)
            used(root).touch()
            # Roots of other recipes or sources that no run used for STALE_DAYS: the cache is the machine's, so a
            # clone at another commit may still boot one (deleting it at once, two such clones rebuilt in turn).
            for stale in cache_dir.glob("*-*"):
                if stale != root and (stale / "etc/os-release").exists() and not recently_used(stale):
                    shutil.rmtree(stale, ignore_errors=True)
                    used(stale).unlink(missing_ok=True)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return root


def pid_namespace(pid: int) -> str | None:
    """The PID namespace `pid` lives in (`pid:[4026531836]`), or None once it has gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def processes_in(namespace: str) -> list[int]:
    """Every process of this machine in PID namespace `namespace`."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and pid_namespace(int(entry.name)) == namespace
    ]


@dataclass
class BootedHost:
    """One boot of the cached root: `with BootedHost(root, work_dir) as host:` boots it, waits until systemd
    reports the boot finished, and powers it off and removes its files on leaving, whatever happened."""

    root: Path
    work_dir: Path
    # Folders of this machine to bind into the host: {this machine's path: the host's path}.
    binds: dict[Path, str] = field(default_factory=dict)
    read_only_binds: dict[Path, str] = field(default_factory=dict)
    name: str = "lampi-test"
    ssh_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    namespace: str | None = None
    overlay: bool = False
    tmpfs: bool = False

    @property
    def tree(self) -> Path:
        return self.work_dir / "tree"

    @property
    def layer(self) -> Path:
        return self.work_dir / "layer"

    @property
    def key(self) -> Path:
        return self.work_dir / "id_ed25519"

    @property
    def log(self) -> Path:
        return self.work_dir / "nspawn.log"

    def __enter__(self) -> "BootedHost":
        try:
            self.boot()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def boot(self) -> None:
        """Copies the root, lets this machine's key in over ssh on `ssh_port`, boots it and waits for systemd."""
        if os.geteuid() != 0:
            raise HostError("booting the test host needs root (an overlay mount, systemd-nspawn)")
        if not shutil.which("systemd-nspawn"):
            raise HostError("systemd-nspawn is missing: run `make setup` (scripts/setup.sh installs systemd-container)")
        self.copy_root()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key], check=True)
        ssh_dir = self.tree / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        if LOCAL_CAS.is_dir():
            shutil.copytree(LOCAL_CAS, self.tree / LOCAL_CAS.relative_to("/"), dirs_exist_ok=True)
        (self.tree / "etc/hostname").write_text(f"{self.name}\n")  # debootstrap copied this machine's
        (self.tree / "etc/ssh/sshd_config.d/lampi-test.conf").write_text(
            f"# Loopback only: the host shares this machine's network.\nListenAddress 127.0.0.1\nPort {self.ssh_port}\n"
        )
        binds = [f"--bind={path}:{target}" for path, target in self.binds.items()]
        binds += [f"--bind-ro={path}:{target}" for path, target in self.read_only_binds.items()]
        command = ["systemd-nspawn", "-D", self.tree, "-b", "--register=no", "--keep-unit", f"--machine={self.name}"]
        with open(self.log, "w") as log:
            # A session of its own: stop() can signal nspawn and whatever it left in its group.
            self.process = subprocess.Popen(
                [*command, *binds],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_running()

    def copy_root(self) -> None:
        """The host's own tree: an overlay over the cached root whose changes live in memory (instant to make and
        to drop; a deployment writes tens of thousands of files, which take minutes to delete from this disk),
        or a full copy where overlays fail."""
        self.tree.mkdir(parents=True)
        self.layer.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={LAYER_SIZE},mode=0755", "lampi-host", self.layer],
            capture_output=True,
        )
        self.tmpfs = os.path.ismount(self.layer)
        upper, work = self.layer / "upper", self.layer / "work"
        upper.mkdir()
        work.mkdir()
        options = f"lowerdir={self.root},upperdir={upper},workdir={work}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, self.tree], capture_output=True)
        self.overlay = mounted.returncode == 0
        if not self.overlay:
            self.tree.rmdir()
            subprocess.run(["cp", "-a", "--reflink=auto", self.root, self.tree], check=True)

    def wait_until_running(self) -> None:
        """Returns once `systemctl is-system-running` says running; HostError if nspawn exits or a unit failed."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise HostError(f"systemd-nspawn exited ({self.process.returncode}) on boot: {self.last_log_line()}")
            if self.namespace is None:
                init = self.init_pid()
                self.namespace = pid_namespace(init) if init else None
            with contextlib.suppress(subprocess.TimeoutExpired):
                state = self.ssh("systemctl is-system-running --wait", timeout=max(1, deadline - time.monotonic()))
                if state.stdout.strip() == "running":
                    return
                if state.stdout.strip() in ("degraded", "maintenance", "stopping"):
                    failed = self.ssh("systemctl list-units --failed --plain --no-legend").stdout.split()
                    raise HostError(f"the host booted {state.stdout.strip()}: failed units {failed[:1] + failed[5:6]}")
            if time.monotonic() > deadline:
                raise HostError(f"the host did not finish booting in {BOOT_TIMEOUT} s: {self.last_log_line()}")
            time.sleep(0.5)

    def init_pid(self) -> int | None:
        """This machine's PID of the container's systemd (nspawn's child), once it exists."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def last_log_line(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no output"

    def ssh_options(self) -> list[str]:
        """Options that reach the host as root with the test's key, and no questions about its host key."""
        return [
            "-i", str(self.key), "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5",
        ]  # fmt: skip

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs a shell command on the host as root; its exit status and output, never raising for a failure."""
        argv = ["ssh", *self.ssh_options(), "root@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        """Powers the host off (killing what is left after STOP_TIMEOUT s), checks that none of its processes
        remain, and removes its tree. Raises HostError naming what could not be stopped."""
        if self.process is not None and self.process.poll() is None:
            # nspawn turns SIGTERM into an orderly poweroff of the container (SIGRTMIN+3 to its systemd).
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                init = self.init_pid()
                if init:
                    os.kill(init, signal.SIGKILL)  # a PID namespace's init takes every process in it along
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        left = processes_in(self.namespace) if self.namespace else []
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount, mounted in ((self.tree, self.overlay), (self.layer, self.tmpfs)):
            if mounted:
                subprocess.run(["umount", mount], capture_output=True)
            if mounted and os.path.ismount(mount):
                raise HostError(f"{mount} is still mounted after the host stopped: umount it, remove {self.work_dir}")
        shutil.rmtree(self.work_dir, ignore_errors=True)
        if left:
            raise HostError(f"{len(left)} processes of the host outlived its poweroff (killed): {left[:5]}")
