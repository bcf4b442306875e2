"""The restore drill (scripts/restore_drill.py) and the shipped backup settings it runs with.

The drill needs PostgreSQL 15's binaries, pgbackrest and restic (Debian packages, installed by
.ci/run and `make test`); it fails, not skips, without them."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.restore_drill import KEY_TABLES, PGBACKREST_CONF, pg_bindir, run_drill

ROOT = Path(__file__).resolve().parent.parent


def shipped_pgbackrest_conf() -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(PGBACKREST_CONF)
    return conf


def test_pgbackrest_config_encrypts_both_repositories_with_the_retention_policy():
    conf = shipped_pgbackrest_conf()
    options = conf["global"]
    for repo in ("repo1", "repo2"):
        assert options[f"{repo}-cipher-type"] == "aes-256-cbc"
        # the passphrase comes from a secret file through bin/imewe-pgbackrest, never this file
        assert f"{repo}-cipher-pass" not in options
    # weekly fulls (4) with daily differentials (7) in repo1; monthly fulls (12) in repo2
    assert options["repo1-retention-full"] == "4"
    assert options["repo1-retention-diff"] == "7"
    assert options["repo2-retention-full"] == "12"
    assert options["cmd"] == "/usr/local/bin/imewe-pgbackrest"
    assert conf["imewe"]["pg1-path"] == "/var/lib/postgresql/data"


def test_backup_schedule_matches_the_retention_policy():
    jobs = [
        line.split()
        for line in (ROOT / "deploy" / "backup" / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    schedule = {job[-1]: job[:5] for job in jobs}
    assert schedule == {
        "full": ["30", "1", "*", "*", "0"],  # Sunday
        "diff": ["30", "1", "*", "*", "1-6"],  # the other days
        "monthly": ["30", "3", "1", "*", "*"],  # the 1st
    }
    media = (ROOT / "deploy" / "backup" / "bin" / "imewe-backup-media").read_text()
    assert "--keep-daily 7 --keep-weekly 4 --keep-monthly 12" in media


@pytest.mark.integration
def test_restore_drill_restores_the_database_and_media_as_they_stood_at_the_target_time():
    for tool in ("pgbackrest", "restic"):
        assert shutil.which(tool), f"install the Debian package {tool} (the restore drill)"
    pg_bindir()  # PostgreSQL's initdb and pg_ctl

    report = run_drill()

    # rows were written after T ...
    for table in KEY_TABLES:
        assert report.final[table][0] > report.at_target[table][0], table
    # ... and the restore has exactly what stood at T: counts and checksums
    assert report.restored == report.at_target
    assert report.media_restored == report.media_at_target
    assert "cad/2026/12/late.step" not in report.media_restored
    # restic's daily retention kept one snapshot per day: yesterday's and today's newest
    assert report.media_snapshots_kept == 2
    # the healthcheck of the backup service fails until there is a backup, then passes
    assert (report.healthy_before_backup, report.healthy_after_backup) == (False, True)
    assert report.cipher == {"1": "aes-256-cbc", "2": "aes-256-cbc"}


BIN = ROOT / "deploy" / "backup" / "bin"


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], **env},
    )


def test_backup_scripts_are_executable_posix_shell():
    scripts = sorted(BIN.iterdir())
    assert {p.name for p in scripts} >= {
        "imewe-pgbackrest",
        "imewe-backup",
        "imewe-backup-media",
        "imewe-backup-health",
        "imewe-backup-start",
    }
    for script in scripts:
        assert os.access(script, os.X_OK), script.name
        assert script.read_text().startswith("#!/bin/sh\n"), script.name
        parsed = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert parsed.returncode == 0, (script.name, parsed.stderr)


def test_pgbackrest_wrapper_refuses_to_run_without_its_passphrases(tmp_path):
    (tmp_path / "pgbackrest_repo1_passphrase").write_text("only the first")
    result = run_script("imewe-pgbackrest", "info", BACKUP_SECRETS_DIR=str(tmp_path))
    assert result.returncode == 3
    assert f"cannot read {tmp_path}/pgbackrest_repo2_passphrase" in result.stderr


def test_backup_script_names_its_kinds_and_media_script_needs_the_directory(tmp_path):
    wrong = run_script("imewe-backup", "hourly")
    assert wrong.returncode == 2 and "full|diff|monthly" in wrong.stderr
    missing = run_script("imewe-backup-media", MEDIA_DIR=str(tmp_path / "absent"))
    assert missing.returncode == 3 and "is not a directory" in missing.stderr
