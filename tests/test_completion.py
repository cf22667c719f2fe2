"""``mnist-lit --print_completion SHELL`` prints a completion script that completes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mnist_lit.cli import main


def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["--print_completion", shell])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _complete(script: Path, *words: str) -> list[str]:
    """What bash offers after ``mnist-lit words...`` (the last word being typed)."""
    line = " ".join(["mnist-lit", *words])
    program = "\n".join([
        f"source {script}",
        f"cd {script.parent}",
        f"COMP_WORDS=(mnist-lit {' '.join(repr(word) for word in words)})",
        f"COMP_CWORD={len(words)}; COMP_LINE={line!r}; COMP_POINT={len(line)}",
        "_shtab_mnist_lit",
        'printf "%s\\n" "${COMPREPLY[@]}"',
    ])  # fmt: skip
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_completes_commands_options_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "mnist-lit.bash"
    script.write_text(_script("bash", capsys))
    (tmp_path / "my_config.yaml").touch()
    assert _complete(script, "l") == ["lr_find"]
    assert _complete(script, "fit", "--trainer.max_ep") == ["--trainer.max_epochs"]
    assert _complete(script, "compare", "--preset", "") == ["nielsen", "tutorial"]
    assert "my_config.yaml" in _complete(script, "fit", "--config", "my_")
    assert "-->" not in script.read_text()  # links between options are not options


def test_zsh_and_tcsh_get_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    zsh = _script("zsh", capsys)
    assert "#compdef mnist-lit" in zsh and "--trainer.max_epochs" in zsh
    tcsh = _script("tcsh", capsys)
    assert "complete mnist-lit" in tcsh and "'c/--ckpt_path=/f/'" in tcsh
