"""The task collection shared by `invoke` (tasks.py) and the `tune` console script.

Each area keeps its thin tasks in its own module here; this file only collects them.
"""
import sys

from invoke import Collection, Program, Task

from .. import __version__
from . import conversation, core, persona, run, state, ui, webhook
from .base import CLOSED_PIPE, HELP, silence

ns = Collection()
for _module in (core, persona, conversation, webhook, run, state, ui):
    for _name, _obj in sorted(vars(_module).items()):
        if isinstance(_obj, Task):
            ns.add_task(_obj)


class TuneProgram(Program):
    """invoke's Program, ending quietly when its own output is cut short (`tune --help | head`)."""

    def run(self, argv=None, exit=True):
        try:
            return super().run(argv, exit)
        except BrokenPipeError:
            silence(sys.stdout)
            sys.exit(CLOSED_PIPE)


program = TuneProgram(namespace=ns, name="tune", binary="tune", version=__version__)
HELP["program"] = program  # its run() ends quietly if the help is cut short
