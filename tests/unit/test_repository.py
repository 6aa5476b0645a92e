"""A fresh clone has nothing beside it: the product, its tests and its docs refer only to what the repository holds."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `../shared/...` in prose, or `... / "shared" / ...` built from a path above the checkout.
OUTSIDE = re.compile(r"\.\./shared\b|/\s*\"shared\"\s*/")


def test_no_tracked_file_refers_to_the_shared_folder_beside_the_checkout():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".txt") or not path.is_file():
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                      if OUTSIDE.search(line) and path != Path(__file__)]
    assert offenders == []


def test_the_line_webhook_samples_the_tests_use_are_in_the_repository():
    samples = ROOT / "tests" / "fixtures" / "line" / "webhook-samples.json"
    assert samples.is_file() and "Apache" in (samples.parent / "README.md").read_text()
