"""The task collection shared by `invoke` (tasks.py) and the `tune` console script.

Each area keeps its thin tasks in its own module here; this file only collects them.
"""
from invoke import Collection, Program, Task

from .. import __version__
from . import conversation, core, persona, run, state, webhook

ns = Collection()
for _module in (core, persona, conversation, webhook, run, state):
    for _name, _obj in sorted(vars(_module).items()):
        if isinstance(_obj, Task):
            ns.add_task(_obj)

program = Program(namespace=ns, name="tune", binary="tune", version=__version__)
