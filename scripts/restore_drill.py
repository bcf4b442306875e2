"""Restore drill: prove that the backups restore, to a point in time, with the shipped settings.

    .venv/bin/python scripts/restore_drill.py        (tests/test_restore_drill.py runs it in CI)

It builds a scratch PostgreSQL cluster (initdb, a free port >= 55433, a temporary directory) that
archives its WAL with pgBackRest into temporary repositories configured like
deploy/backup/pgbackrest.conf (the same cipher, retention and compression options; only the
paths and passphrases differ), migrates the Imewe schema into it and writes rows, takes a full
backup, writes more rows, notes a time T, writes more rows, restores into a new data directory
at T (--type=time) and starts it. The restored key tables must match, row count and checksum,
what stood at T: the rows written after T are absent. Every pgBackRest call (the server's
archive_command too) and the media backups go through the scripts the backup container runs
(deploy/backup/bin/, copied into the drill's directory so the postgres user may run them), with
the passphrases in secret files as in production. Media: a snapshot dated the day before, files
changed after T, two more snapshots, restic's retention applied, then the newest snapshot at or
before T restored and compared file by file.

Runs as root too (CI): PostgreSQL refuses to run as root, so every PostgreSQL and pgBackRest
command runs as the `postgres` OS user through runuser. Needs the PostgreSQL 15 binaries,
pgbackrest and restic (Debian packages; .ci/run and `make test` install them); PG_BINDIR
chooses the PostgreSQL binaries (default: the newest under /usr/lib/postgresql).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BACKUP_DIR = ROOT / "deploy" / "backup"
PGBACKREST_CONF = BACKUP_DIR / "pgbackrest.conf"
STANZA = "drill"
FIRST_PORT = 55433
# The tables compared after the restore: what a lost row would hurt most.
KEY_TABLES = {
    "users_organization": "id",
    "users_user": "id",
    "vendors_fabricationnode": "id",
    "telemetry_point": "node_id, time",
}
# A value that must never appear in a backup repository in clear.
PLAINTEXT_MARKER = "imewe-drill-plaintext-marker"


class DrillError(RuntimeError):
    """A step of the drill failed; the message says which and why."""


def pg_bindir() -> Path:
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for candidate in (os.environ.get("PG_BINDIR"), *installed):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise DrillError("initdb not found: install PostgreSQL 15 or set PG_BINDIR")


def free_port(start: int = FIRST_PORT) -> int:
    for port in range(start, start + 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DrillError(f"no free port in {start}..{start + 199}")


@dataclass
class Drill:
    workdir: Path
    log: list[str] = field(default_factory=list)
    as_postgres: list[str] = field(default_factory=list)  # runuser prefix when run as root
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.bindir = pg_bindir()
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.data = self.workdir / "data"
        self.restored = self.workdir / "restored"
        self.sock = self.workdir / "sock"
        self.conf = self.workdir / "pgbackrest.conf"
        self.bin = self.workdir / "bin"
        self.secrets = self.workdir / "secrets"
        # as in production: passphrases in secret files, read by bin/imewe-pgbackrest
        self.env = {
            **os.environ,
            "BACKUP_SECRETS_DIR": str(self.secrets),
            "PGBACKREST_CONFIG": str(self.conf),
            "PGBACKREST_STANZA": STANZA,
        }

    def say(self, message: str) -> None:
        self.log.append(message)
        print(f"drill {time.monotonic() - self.started:5.1f} s: {message}", flush=True)

    def run(
        self, args: Sequence[str | Path], *, as_postgres: bool = True, timeout: float = 120
    ) -> str:
        # runuser keeps the environment: BACKUP_SECRETS_DIR and PGBACKREST_CONFIG reach the
        # wrapper, and through pg_ctl the server's archive_command and restore_command
        command = [*(self.as_postgres if as_postgres else []), *map(str, args)]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=self.env
        )
        if result.returncode != 0:
            raise DrillError(
                f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return result.stdout

    def pgbackrest(self, *args: str, timeout: float = 120) -> str:
        return self.run([self.bin / "imewe-pgbackrest", *args], timeout=timeout)

    def backup_healthy(self) -> bool:
        try:
            self.run([self.bin / "imewe-backup-health"])
        except DrillError:
            return False
        return True

    # --- setup -----------------------------------------------------------------------------
    def write_pgbackrest_conf(self) -> None:
        """deploy/backup/pgbackrest.conf's [global] options with this drill's paths."""
        shipped = configparser.ConfigParser(interpolation=None)
        shipped.optionxform = str  # type: ignore[assignment,method-assign]
        shipped.read(PGBACKREST_CONF)
        options = dict(shipped["global"])
        for key in list(options):
            if key.endswith("-path"):
                del options[key]
        options.update(
            {
                "cmd": str(self.bin / "imewe-pgbackrest"),
                "repo1-path": str(self.workdir / "repo1"),
                "repo2-path": str(self.workdir / "repo2"),
                "log-path": str(self.workdir / "log"),
                "lock-path": str(self.workdir / "lock"),
                "spool-path": str(self.workdir / "spool"),
                "log-level-console": "warn",
                "process-max": "1",
            }
        )
        lines = ["[global]", *(f"{k}={v}" for k, v in options.items()), ""]
        lines += [
            f"[{STANZA}]",
            f"pg1-path={self.data}",
            f"pg1-port={self.port}",
            f"pg1-socket-path={self.sock}",
            "pg1-user=postgres",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.options = options

    def initdb(self) -> None:
        self.port = free_port()
        for path in (self.sock, self.workdir / "log", self.workdir / "lock", self.secrets):
            path.mkdir()
        shutil.copytree(BACKUP_DIR / "bin", self.bin)
        for name in ("pgbackrest_repo1_passphrase", "pgbackrest_repo2_passphrase"):
            (self.secrets / name).write_text(secrets.token_urlsafe(32))
            (self.secrets / name).chmod(0o400)
        self.write_pgbackrest_conf()
        postgres = pwd.getpwnam("postgres") if self.as_postgres else None
        if postgres:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, postgres.pw_uid, postgres.pw_gid)
        self.run([self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust"])
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sock}'\n"
                "wal_level = replica\n"
                "archive_mode = on\n"
                f"archive_command = '{self.bin / 'imewe-pgbackrest'} archive-push %p'\n"
                "max_wal_senders = 3\n"
                "fsync = off\n"  # a scratch cluster: speed over durability
                "shared_buffers = 32MB\n"
            )
        self.say(f"scratch cluster in {self.data} on port {self.port}")

    def pg_ctl(self, data: Path, action: str, *extra: str) -> None:
        log = data.parent / f"{data.name}.log"
        try:
            self.run(
                [self.bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", action, *extra]
            )
        except DrillError as error:
            server_log = log.read_text()[-3000:] if log.exists() else "(no log)"
            raise DrillError(f"{error}\nserver log:\n{server_log}") from None

    def dsn(self, port: int, dbname: str = "imewe") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"

    # --- the drill -------------------------------------------------------------------------
    def migrate(self) -> None:
        with psycopg.connect(self.dsn(self.port, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE imewe")
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn(self.port),
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_SETTINGS_MODULE": "imewe.settings",
            "REDIS_URL": "",
            "DEBUG": "0",
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise DrillError(f"migrate failed:\n{result.stderr[-3000:]}")
        self.say("Imewe schema migrated")

    def write_batch(self, tag: str, users: int, points: int) -> None:
        """An organization with its vendor, a node, users and telemetry, in one transaction."""
        with psycopg.connect(self.dsn(self.port)) as conn:
            org = conn.execute(
                "INSERT INTO users_organization (created_at, updated_at, name, slug, kind)"
                " VALUES (now(), now(), %s, %s, 'vendor') RETURNING id",
                (f"Drill {tag} {PLAINTEXT_MARKER}", f"drill-{tag}"),
            ).fetchone()[0]  # type: ignore[index]
            vendor = conn.execute(
                "INSERT INTO vendors_vendorprofile (created_at, updated_at, description,"
                " certifications, verification_status, contact_name, contact_email,"
                " contact_phone, website, organization_id) VALUES (now(), now(), '', '[]',"
                " 'verified', '', '', '', '', %s) RETURNING id",
                (org,),
            ).fetchone()[0]  # type: ignore[index]
            node = conn.execute(
                "INSERT INTO vendors_fabricationnode (created_at, updated_at, name, kind,"
                " processes, materials, build_x_mm, build_y_mm, build_z_mm, precision_mm,"
                " software_version, rated_power_kw, status, approval, approval_comment,"
                " vendor_id, requires_confirmation, bed_clear_required) VALUES (now(), now(), %s,"
                " 'printer', '[]', '[]', 200, 200, 200, 0.1, '1.0', 1.5, 'online', 'approved', '',"
                " %s, false, false) RETURNING id",
                (f"Node {tag}", vendor),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO users_user (password, is_superuser, email, full_name, role,"
                " is_active, is_staff, date_joined, token_generation)"
                " SELECT '!', false, %s || i || '@drill.test', 'User ' || i, 'designer',"
                " true, false, now(), 0 FROM generate_series(1, %s) AS i",
                (f"{tag}-", users),
            )
            conn.execute(
                "INSERT INTO telemetry_point (time, node_id, temperature_c, power_kw, extra)"
                " SELECT now() - i * interval '100 milliseconds', %s, 20 + i %% 50,"
                " (i %% 7) / 3.0, '{}' FROM generate_series(1, %s) AS i",
                (node, points),
            )
        self.say(f"batch {tag}: 1 organization, 1 node, {users} users, {points} points")

    def fingerprint(self, port: int) -> dict[str, tuple[int, str]]:
        """Row count and an md5 over every row, in key order, of each key table."""
        out: dict[str, tuple[int, str]] = {}
        with psycopg.connect(self.dsn(port)) as conn:
            for table, order in KEY_TABLES.items():
                count, digest = conn.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {order}),"
                    f" '')) FROM {table} AS t"
                ).fetchone()  # type: ignore[misc]
                out[table] = (count, digest)
        return out

    def server_time(self) -> datetime:
        with psycopg.connect(self.dsn(self.port)) as conn:
            return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]

    def restore_at(self, target: datetime) -> int:
        self.restored.mkdir(mode=0o700)
        if self.as_postgres:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.restored, postgres.pw_uid, postgres.pw_gid)
        self.pgbackrest(
            "restore",
            "--repo=1",
            f"--pg1-path={self.restored}",
            "--type=time",
            f"--target={target.isoformat(sep=' ')}",
            "--target-action=promote",
        )
        port = free_port(self.port + 1)
        # the restored postgresql.conf is the original's: another port, and no archiving into
        # the repository the original still writes to
        self.pg_ctl(
            self.restored,
            "start",
            "-o",
            f"-p {port} -c archive_mode=off -c unix_socket_directories={self.sock}",
        )
        with psycopg.connect(self.dsn(port, "postgres")) as conn:
            for _ in range(120):
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    break
                time.sleep(0.5)
            else:
                raise DrillError("the restored cluster did not leave recovery")
        self.say(f"restored at {target.isoformat()} into {self.restored}, port {port}")
        return port

    def assert_repositories_hide(self, *repos: Path) -> None:
        for repo in repos:
            for path in repo.rglob("*"):
                if path.is_file() and PLAINTEXT_MARKER.encode() in path.read_bytes():
                    raise DrillError(f"{path} holds plaintext")


@dataclass
class Report:
    at_target: dict[str, tuple[int, str]]
    final: dict[str, tuple[int, str]]
    restored: dict[str, tuple[int, str]]
    media_at_target: dict[str, str]
    media_restored: dict[str, str]
    media_snapshots_kept: int
    healthy_before_backup: bool
    healthy_after_backup: bool
    cipher: dict[str, str]
    seconds: float


def media_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class MediaDrill:
    """deploy/backup/bin/imewe-backup-media against a media directory and a restic repository
    of the drill's own."""

    def __init__(self, drill: Drill) -> None:
        self.drill = drill
        self.media = drill.workdir / "media"
        self.repo = drill.workdir / "restic"
        password = drill.workdir / "restic.pass"
        password.write_text(secrets.token_urlsafe(32))
        self.env = {
            **os.environ,
            "MEDIA_DIR": str(self.media),
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_PASSWORD_FILE": str(password),
            "RESTIC_CACHE_DIR": str(drill.workdir / "restic-cache"),
        }

    def _run(self, command: Sequence[str | Path]) -> str:
        result = subprocess.run(
            list(map(str, command)), capture_output=True, text=True, env=self.env, timeout=120
        )
        if result.returncode != 0:
            raise DrillError(f"{' '.join(map(str, command))}: {result.stderr[-2000:]}")
        return result.stdout

    def backup(self, *extra: str) -> None:
        self._run([BACKUP_DIR / "bin" / "imewe-backup-media", *extra])

    def snapshots(self) -> list[dict[str, str]]:
        return list(json.loads(self._run(["restic", "snapshots", "--json"])))

    def snapshot_before_target(self, target_day: datetime) -> dict[str, str]:
        for rel, content in {
            "cad/2026/12/bracket.step": f"ISO-10303-21; {PLAINTEXT_MARKER}".encode(),
            "marketplace/2026/12/listing.png": b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096),
            "twins/2026/12/mill.glb": b"glTF" + secrets.token_bytes(20000),
        }.items():
            (self.media / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.media / rel).write_bytes(content)
        # dated the day before, so that the daily retention keeps it next to today's
        yesterday = (target_day - timedelta(days=1)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        self.backup("--time", yesterday)
        return media_digest(self.media)

    def change_after_target(self) -> None:
        (self.media / "cad/2026/12/late.step").write_bytes(b"written after T")
        self.backup()
        (self.media / "twins/2026/12/mill.glb").write_bytes(b"overwritten after T")
        self.backup()

    def restore_at(self, target: datetime) -> tuple[dict[str, str], int]:
        snapshots = self.snapshots()
        chosen = max(
            (s for s in snapshots if datetime.fromisoformat(s["time"]) <= target),
            key=lambda s: s["time"],
        )
        out = self.drill.workdir / "media-restored"
        self._run(["restic", "restore", chosen["short_id"], "--target", out])
        self._run(["restic", "check"])
        restored = media_digest(out)
        self.drill.assert_repositories_hide(self.repo)
        self.drill.say(
            f"media: snapshot {chosen['short_id']} restored ({len(restored)} files); "
            f"{len(snapshots)} snapshots kept of 3 taken"
        )
        return restored, len(snapshots)


def run_drill(keep: bool = False) -> Report:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="imewe-restore-drill-"))
    drill = Drill(workdir=workdir)
    try:
        drill.initdb()
        drill.pg_ctl(drill.data, "start")
        drill.pgbackrest("stanza-create")
        healthy_before = drill.backup_healthy()
        drill.migrate()
        drill.write_batch("a", users=50, points=5000)
        drill.pgbackrest("check")
        drill.pgbackrest("--repo=1", "--type=full", "backup", timeout=300)
        healthy_after = drill.backup_healthy()
        drill.say(
            f"full backup in repo1; healthcheck before {healthy_before}, after {healthy_after}"
        )
        drill.write_batch("b", users=20, points=2000)
        media = MediaDrill(drill)
        at_target = drill.fingerprint(drill.port)
        # pgBackRest picks the backup whose stop time (whole seconds) is before the target:
        # a target in the same second as the backup's end finds none
        time.sleep(1.1)
        target = drill.server_time()
        media_at_target = media.snapshot_before_target(target)
        time.sleep(0.2)  # commits after T have a later timestamp, even on a coarse clock
        drill.write_batch("c", users=30, points=3000)
        media.change_after_target()
        final = drill.fingerprint(drill.port)
        drill.pgbackrest("check")  # switches WAL and waits until the segment is archived
        info = json.loads(drill.pgbackrest("--output=json", "info"))
        cipher = {str(r["key"]): str(r["cipher"]) for r in info[0]["repo"]}
        port = drill.restore_at(target)
        restored = drill.fingerprint(port)
        drill.pg_ctl(drill.restored, "stop", "-m", "fast")
        media_restored, media_kept = media.restore_at(target)
        drill.assert_repositories_hide(workdir / "repo1", workdir / "repo2")
        return Report(
            at_target=at_target,
            final=final,
            restored=restored,
            media_at_target=media_at_target,
            media_restored=media_restored,
            media_snapshots_kept=media_kept,
            healthy_before_backup=healthy_before,
            healthy_after_backup=healthy_after,
            cipher=cipher,
            seconds=time.monotonic() - started,
        )
    finally:
        with suppress(DrillError, OSError, subprocess.SubprocessError):
            drill.pg_ctl(drill.restored, "stop", "-m", "immediate")
        with suppress(DrillError, OSError, subprocess.SubprocessError):
            drill.pg_ctl(drill.data, "stop", "-m", "immediate")
        if keep:
            print(f"drill: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    keep = "--keep" in sys.argv
    report = run_drill(keep=keep)
    ok = report.restored == report.at_target and report.media_restored == report.media_at_target
    for table, (count, digest) in report.at_target.items():
        got = report.restored[table]
        print(
            f"{table:28} at T {count:6} rows {digest[:12]}  restored {got[0]:6} rows "
            f"{got[1][:12]}  now {report.final[table][0]:6} rows"
        )
    print(
        f"media: {len(report.media_restored)} files restored as at T "
        f"({'identical' if report.media_restored == report.media_at_target else 'DIFFERENT'})"
    )
    print(f"repositories' cipher: {report.cipher}; {report.seconds:.1f} s")
    print("RESTORE DRILL PASS" if ok else "RESTORE DRILL FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
