"""First start: processes racing to create the data dir's secrets all read one whole secret."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

RACERS = 8
READ_SECRET = """
import sys, time
from tenantry.config import Settings
from tenantry.datadir import server_secret, signing_key_pem
start = float(sys.argv[1])
while time.time() < start:
    pass
settings = Settings(_env_file=None, data_dir=sys.argv[2])
print(server_secret(settings).decode(), len(signing_key_pem(settings)))
"""


def test_racing_first_starts_agree_on_one_whole_secret(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    start = time.time() + 2  # every racer imported and spinning by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", READ_SECRET, str(start), str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    outputs = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    on_disk = (data_dir / "secret.key").read_text()
    pem = len((data_dir / "keys" / "signing.pem").read_bytes())
    assert outputs == {f"{on_disk} {pem}"}
    assert len(on_disk) >= 48
    assert not [p for p in data_dir.rglob(".*") if p.is_file()], "a temporary file was left"
