"""Overrides on both sides of Hydra's flags are read, in the order given.

Hydra 1.3's parser reads its overrides only as one run of words: ``train.py seed=1 -cp DIR
model=zscore`` ended in Hydra's usage message of several lines (``unrecognized arguments:
model=zscore``), and ``train.py --info experiment=smoke`` took the override for ``--info``'s
value (``invalid choice``). ``sweep.py`` read them on both sides of its flags already. The entry
points now put the overrides after the flags (``jobs.config_path.overrides_together``).
"""

from __future__ import annotations

import pytest
import yaml

from tests.unit.test_config_path_cwd import ENTRY_POINTS, own_configs, run


def hydra_reads(args: list[str]) -> dict:
    from hydra._internal.utils import get_args_parser

    return vars(get_args_parser().parse_args(args))


@pytest.mark.parametrize("args, flags", [
    (["a=1", "-cp", "/x", "b=2"], {"config_path": "/x"}),
    (["a=1", "--config-path=/x", "b=2", "-cn", "mine", "c=3"],
     {"config_path": "/x", "config_name": "mine"}),
    (["a=1", "-m", "b=2"], {"multirun": True}),
    (["a=1", "--cfg", "job", "b=2", "--resolve"], {"cfg": "job", "resolve": True}),
    (["a=1", "-c", "job", "b=2"], {"cfg": "job"}),
    (["a=1", "--config-n", "mine", "b=2"], {"config_name": "mine"}),
    (["--info", "a=1", "b=2"], {"info": "all"}),
    (["a=1", "--info", "defaults", "b=2"], {"info": "defaults"}),
])
def test_overrides_on_both_sides_of_the_flags_are_read_in_order(args, flags):
    from esa_lightning.jobs.config_path import overrides_together

    out = overrides_together(args)
    read = hydra_reads(out)
    assert read["overrides"] == [a for a in args if "=" in a and not a.startswith("-")]
    assert {key: read[key] for key in flags} == flags


@pytest.mark.parametrize("args", [
    ["a=1", "b=2"], ["-cp", "/x", "a=1", "b=2"], ["a=1", "-m"], [],
    ["a=1", "--nope", "b=2"],  # a flag Hydra does not know: Hydra says so
    ["a=1", "-cp"],  # no value: Hydra says so
    ["a=1", "--", "-cp", "/x", "b=2"],
])
def test_other_command_lines_are_left_as_they_are(args):
    from esa_lightning.jobs.config_path import overrides_together

    assert overrides_together(list(args)) == args


@pytest.mark.parametrize("job", ENTRY_POINTS)
def test_an_entry_point_reads_overrides_before_and_after_the_config_flags(tmp_path, job):
    own_configs(tmp_path)
    proc = run(job, tmp_path, "task_name=first", "-cp", "my_confs", "task_name=second",
               "-cn", f"my_{job}", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["task_name"] == "second"  # the later one, as given
    assert not (tmp_path / "outputs").exists()
