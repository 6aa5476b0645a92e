"""The house rules that keep bot/ pure, checked by import-linter against pyproject.toml's contract."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bot_imports_no_framework_and_no_outer_layer():
    # In a process of its own: import-linter reconfigures logging, which would silence later tests' caplog.
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                             "sys.exit(lint_imports(no_cache=True))"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
