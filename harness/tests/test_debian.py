"""The private apt configuration and Debian kernel package resolution, with apt stubbed out."""
import pytest

from gmemharness import debapt, debkernel
from gmemharness.errors import InfraError


def write_sources(etc, deb822="", one_line=""):
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d/debian.sources").write_text(deb822)
    (etc / "sources.list").write_text(one_line)
    return etc


def test_mirrors_come_from_the_main_archive_entries_of_the_system_sources(tmp_path):
    etc = write_sources(tmp_path / "apt", deb822="""Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no
""", one_line="deb [arch=amd64] http://other.example/debian/ bookworm main\n"
               "deb http://other.example/security bookworm/updates main\n# deb http://commented.example x y\n")
    assert debapt.mirror_uris(etc) == ["http://mirror.example/debian", "http://other.example/debian"]


def test_the_private_config_points_every_apt_directory_into_the_cache(tmp_path):
    apt = debapt.PrivateApt(tmp_path / "apt", uris=["http://mirror.example/debian"])
    conf = apt.config.read_text()
    for key in ("Dir::State", "Dir::State::status", "Dir::Cache", "Dir::Etc::SourceList",
                "Dir::Etc::SourceParts", "Dir::Etc::Parts", "Dir::Etc::Preferences",
                "Dir::Etc::PreferencesParts"):
        assert f'{key} "{tmp_path}/apt' in conf
    assert 'Acquire::Check-Valid-Until "false";' in conf
    sources = (tmp_path / "apt/sources.list").read_text().splitlines()
    assert len(sources) == len(debapt.KERNEL_SUITES)
    assert sources[0] == f"deb [signed-by={debapt.KEYRING}] http://mirror.example/debian trixie main"
    assert (tmp_path / "apt/state/status").read_text() == ""
    assert apt.env()["APT_CONFIG"] == str(apt.config)


def test_no_mirror_in_the_system_sources_is_a_clear_error(tmp_path):
    with pytest.raises(InfraError, match="no Debian mirror"):
        debapt.PrivateApt(tmp_path / "apt", uris=[])


class StubApt:
    """Answers like apt-cache for a fixed set of packages."""

    def __init__(self, packages):
        self.packages = packages

    def show(self, name):
        return self.packages.get(name)

    def package_names(self, pattern):
        import re
        return sorted(n for n in self.packages if re.fullmatch(pattern, n))


SPLIT = {
    "linux-image-7.2.13+deb14-cloud-amd64": {
        "version": "7.2.13-1",
        "depends": "dracut | initramfs-tools (>= 0.120), linux-base-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), "
                   "linux-binary-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-cloud-amd64 (= 7.2.13-1)"},
    "linux-base-7.2.13+deb14-cloud-amd64": {"version": "7.2.13-1"},
    "linux-binary-7.2.13+deb14-cloud-amd64": {"version": "7.2.13-1"},
    "linux-modules-7.2.13+deb14-cloud-amd64": {"version": "7.2.13-1"},
    "linux-image-7.2.12+deb13-cloud-amd64": {"version": "7.2.12-1~bpo13+1", "depends": "kmod"},
    "linux-image-6.12.107+deb13-cloud-amd64": {"version": "6.12.107-1", "depends": "kmod, initramfs-tools"},
    "linux-image-7.20.1+deb14-cloud-amd64": {"version": "7.20.1-1"},
}


def test_a_split_7x_kernel_needs_its_binary_modules_and_base_packages():
    assert debkernel.packages_for(StubApt(SPLIT), "linux-image-7.2.13+deb14-cloud-amd64", "7.2.13+deb14-cloud-amd64") == {
        "linux-image-7.2.13+deb14-cloud-amd64": "7.2.13-1", "linux-base-7.2.13+deb14-cloud-amd64": "7.2.13-1",
        "linux-binary-7.2.13+deb14-cloud-amd64": "7.2.13-1", "linux-modules-7.2.13+deb14-cloud-amd64": "7.2.13-1"}


def test_a_classic_6x_kernel_is_one_package():
    assert debkernel.packages_for(StubApt(SPLIT), "linux-image-6.12.107+deb13-cloud-amd64", "6.12.107+deb13-cloud-amd64") == {
        "linux-image-6.12.107+deb13-cloud-amd64": "6.12.107-1"}


def test_a_short_version_picks_the_newest_kernel_of_that_series_only():
    assert debkernel.resolve_image_package(StubApt(SPLIT), "7.2") == "linux-image-7.2.13+deb14-cloud-amd64"
    assert debkernel.resolve_image_package(StubApt(SPLIT), "7.2.13+deb14-cloud-amd64") == "linux-image-7.2.13+deb14-cloud-amd64"


def test_a_version_that_does_not_exist_is_a_clear_error_listing_what_does():
    with pytest.raises(InfraError, match=r"no Debian kernel package matches '9.9'.*6\.12\.107"):
        debkernel.resolve_image_package(StubApt(SPLIT), "9.9")
