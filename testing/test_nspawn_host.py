"""The test host's parts that need no booted host: which apt sources it gets, and how a failed boot is reported."""

import os
import time

import pytest

from testing.nspawn_host import STALE_DAYS, BootedHost, HostError, processes_in, recently_used, release_sources, used

DEB822 = """\
Types: deb
# a comment line
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def apt_dir(tmp_path, files: dict[str, str]):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_release_sources_are_kept_and_third_party_ones_left_out(tmp_path):
    folder = apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources": DEB822,
            "sources.list.d/vendor.list": "deb https://vendor.example/apt cloud-sdk-bookworm main\n",
            "sources.list.d/node.sources": "Types: deb\nURIs: https://node.example\nSuites: nodistro\n",
        },
    )
    sources, mirror = release_sources("bookworm", folder)
    assert mirror == "http://mirror.example/debian"
    assert "Suites: bookworm bookworm-updates" in sources
    assert "Suites: bookworm-security" in sources
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in sources
    assert "vendor.example" not in sources
    assert "node.example" not in sources


def test_one_line_sources_become_deb822_with_their_keyring(tmp_path):
    folder = apt_dir(
        tmp_path,
        {"sources.list": "deb [signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n# deb-src x\n"},
    )
    sources, mirror = release_sources("bookworm", folder)
    assert mirror == "http://m.example/debian"
    assert sources == (
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main contrib\nSigned-By: /k.gpg\n"
    )


def test_no_source_for_the_release_is_a_one_line_error(tmp_path):
    folder = apt_dir(tmp_path, {"sources.list": "deb http://m.example/debian trixie main\n"})
    with pytest.raises(HostError, match="no apt source for Debian bookworm"):
        release_sources("bookworm", folder)


def test_a_root_that_cannot_boot_is_a_one_line_error_and_leaves_nothing(tmp_path):
    (tmp_path / "root/etc/ssh/sshd_config.d").mkdir(parents=True)  # a tree with no init to boot
    (tmp_path / "root/root").mkdir()
    host = BootedHost(tmp_path / "root", tmp_path / "host")
    with pytest.raises(HostError, match=r"systemd-nspawn exited \(\d+\) on boot: ") as error:
        host.__enter__()
    assert "\n" not in str(error.value)
    assert host.process.poll() is not None
    assert not (tmp_path / "host").exists()
    assert host.namespace is None or not processes_in(host.namespace)


def test_a_cached_root_counts_as_in_use_for_a_week_after_a_run_last_used_it(tmp_path):
    # The cache is the machine's: a root another clone booted lately is kept when this one builds its own.
    root = tmp_path / "bookworm-0123456789ab"
    root.mkdir()
    used(root).touch()
    assert recently_used(root)
    week_ago = time.time() - (STALE_DAYS * 86400 + 60)
    os.utime(used(root), (week_ago, week_ago))
    assert not recently_used(root)
