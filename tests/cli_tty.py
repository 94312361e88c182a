"""Drive ``openmanus`` in a subprocess whose standard input is a pseudo-terminal, the way a
person at a terminal does: wait for the approval prompt, type an answer, press Ctrl+C, kill it.
The command runs through ``tally_tool.LAUNCHER`` so the counting ``tally`` tool is registered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

from tally_tool import LAUNCHER

PROMPT = "approve / always / edit / deny > "
CLI = "import sys\nfrom openmanus_tui.cli import main\nsys.exit(main(sys.argv[1:]))\n"


class TtyRun:
    def __init__(self, *args: str, logs: Path, env: dict[str, str] | None = None,
                 launcher: str = LAUNCHER) -> None:
        master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # what we type is not echoed back into the pty
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs / "stdout.txt"
        self.stderr_path = logs / "stderr.txt"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", launcher, *args],
                stdin=slave, stdout=out, stderr=err, env={**os.environ, **(env or {})},
            )
        os.close(slave)
        self.master = master

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def prompts(self) -> int:
        return self.stderr.count(PROMPT)

    def wait_prompt(self, count: int, timeout: float = 30) -> None:
        """Wait until the ``count``-th approval prompt is shown."""
        deadline = time.monotonic() + timeout
        while self.prompts() < count:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited {self.proc.returncode} before prompt {count}:\n{self.stderr[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt {count}:\n{self.stderr[-3000:]}")
            time.sleep(0.02)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def answer_all(run: TtyRun, lines: list[str], timeout: float = 90) -> int:
    """Type ``lines`` at every approval prompt until the command ends; its exit code."""
    answered = 0
    deadline = time.monotonic() + timeout
    while run.proc.poll() is None:
        if run.prompts() > answered:
            for line in lines:
                run.type(line)
            answered += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"still running:\n{run.stderr[-3000:]}")
        time.sleep(0.02)
    return run.wait()
