"""The house rules that keep bot/ pure, checked by import-linter against pyproject.toml's contract."""
from importlinter.cli import lint_imports


def test_bot_imports_no_framework_and_no_outer_layer():
    assert lint_imports(no_cache=True) == 0
