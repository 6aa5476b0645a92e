"""A fresh clone has nothing beside it: the product, its tests and its docs refer only to what the repository holds."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The folder beside the checkout, as a relative path in prose or built from a path above the checkout with `/`
# (spelled here in pieces, so that this file does not name it itself).
FOLDER = "sha" + "red"
OUTSIDE = re.compile(rf"\.\./{FOLDER}\b|/\s*\"{FOLDER}\"\s*/")


def test_no_tracked_file_refers_to_the_shared_folder_beside_the_checkout():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".txt") or not path.is_file():
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                      if OUTSIDE.search(line)]
    assert offenders == []


def test_the_line_webhook_samples_the_tests_use_are_in_the_repository():
    samples = ROOT / "tests" / "fixtures" / "line" / "webhook-samples.json"
    assert samples.is_file() and "Apache" in (samples.parent / "README.md").read_text()
