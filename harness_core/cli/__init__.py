"""The task collection shared by `invoke` (tasks.py) and the `tune` console script.

Each area keeps its thin tasks in its own module here; this file only collects them.
"""
import sys

from invoke import Collection, Config, Program, Task

from .. import __version__
from . import conversation, core, persona, resources, run, state, ui, webhook
from .base import CLOSED_PIPE, HELP, silence

ns = Collection()
for _module in (core, persona, resources, conversation, webhook, run, state, ui):
    for _name, _obj in sorted(vars(_module).items()):
        if isinstance(_obj, Task):
            ns.add_task(_obj)


# invoke's core options for running shell commands: nothing here runs one, so `tune` does not offer
# them (`-f/--config` would even load a persona file as invoke's own config). Bytecode is written.
NOT_OFFERED = ("command-timeout", "config", "dry", "echo", "hide", "pty", "prompt-for-sudo-password", "warn-only",
               "write-pyc")


# Tasks whose positional argument may be left out, and what it then means (invoke has no optional
# positional argument): `tune init` is the current folder, `tune run` the project's scenarios/.
DEFAULT_POSITIONAL = {"init": ".", "run": "scenarios"}


def with_default_positional(argv: list[str]) -> list[str]:
    """`argv` with the default positional argument added after a task that was given none."""
    argv = list(argv)
    if "-h" in argv or "--help" in argv:  # `tune --help run`: help, not a run
        return argv
    for name, default in DEFAULT_POSITIONAL.items():
        if name in argv[1:]:
            at = argv.index(name, 1)
            following = argv[at + 1] if at + 1 < len(argv) else None
            if following is None or following.startswith("-"):
                argv.insert(at + 1, default)
    return argv


class TuneConfig(Config):
    """invoke's configuration under tune's own name: tune.yaml files and TUNE_* variables, not invoke's."""

    prefix = "tune"


class TuneProgram(Program):
    """invoke's Program with only the core options that apply, ending quietly when its own output
    is cut short (`tune --help | head`)."""

    def core_args(self):
        """The core options `tune` offers (see NOT_OFFERED)."""
        return [arg for arg in super().core_args() if arg.name not in NOT_OFFERED]

    def parse_core_args(self):
        """Parse the offered options; the others keep their defaults (bytecode on) for invoke's own use."""
        super().parse_core_args()
        for arg in super().core_args():
            if arg.name in NOT_OFFERED:
                if arg.name == "write-pyc":
                    arg.value = True
                self.core[0].args[arg.name] = arg

    def run(self, argv=None, exit=True):
        try:
            return super().run(with_default_positional(sys.argv if argv is None else argv), exit)
        except BrokenPipeError:
            silence(sys.stdout)
            sys.exit(CLOSED_PIPE)


program = TuneProgram(namespace=ns, name="tune", binary="tune", version=__version__, config_class=TuneConfig)
HELP["program"] = program  # its run() ends quietly if the help is cut short
