"""How training data is split into models: one for all machines, one per type, or one per ID."""

from __future__ import annotations

from dataclasses import dataclass

from asdbench.api import Clip
from asdbench.errors import AsdbenchError


@dataclass(frozen=True)
class Group:
    """The clips one model trains and scores on, and its class list (machine IDs, label order)."""

    name: str
    train: tuple[Clip, ...]
    test: tuple[Clip, ...]
    classes: tuple[tuple[str, str], ...]
    owns: tuple[tuple[str, str], ...] = ()  # the IDs this model decides for (its own, not its outliers); all if empty

    @property
    def decides(self) -> tuple[tuple[str, str], ...]:
        return self.owns or self.classes

    def target(self, clip: Clip) -> int:
        return self.classes.index((clip.machine_type, clip.machine_id))

    @property
    def slug(self) -> str:
        return slug(self.name)


def id_name(machine_type: str, machine_id: str, unit: str = "id") -> str:
    """How a machine ID (``unit="section"``: a section) is named in logs, label maps, manifests and metric keys:
    ``fan/id_00``, ``fan/section_00``."""
    return f"{machine_type}/{unit}_{machine_id}"


def slug(name: str) -> str:
    """A model's name as a file name (``fan/id_00`` -> ``fan_id_00``): checkpoints and bundle weights."""
    return name.replace("/", "_")


def _key(clip: Clip, model_per: str, unit: str) -> str:
    if model_per == "all":
        return "all"
    if model_per == "type":
        return clip.machine_type
    return id_name(clip.machine_type, clip.machine_id, unit)


def _id_vs_others(train: list[Clip], test: list[Clip], unit: str) -> list[Group]:
    """One group per machine ID, trained on all clips of its type: class 0 is the ID, the rest its outliers."""
    groups = []
    for mtype, mid in sorted({(c.machine_type, c.machine_id) for c in train}):
        same_type = tuple(c for c in train if c.machine_type == mtype)
        others = sorted({(mtype, c.machine_id) for c in same_type if c.machine_id != mid})
        groups.append(Group(
            id_name(mtype, mid, unit), same_type,
            tuple(c for c in test if (c.machine_type, c.machine_id) == (mtype, mid)),
            ((mtype, mid), *others),
            ((mtype, mid),),
        ))
    return groups


PER_ID = ("id", "id-vs-others")


def skipped_ids(train: list[Clip], test: list[Clip], model_per: str, unit: str = "id") -> list[str]:
    """Machine IDs that would get a model of their own but have no test clips: with one model per ID, such a
    model would be trained and never scored (under the STgram-MFN paper's protocol, the additional training
    set's IDs: 44 % of the models). ``type/id_II`` names, sorted; empty for the pooled modes."""
    if model_per not in PER_ID:
        return []
    tested = {(c.machine_type, c.machine_id) for c in test}
    return [id_name(t, i, unit) for t, i in sorted({(c.machine_type, c.machine_id) for c in train} - tested)]


def make_groups(train: list[Clip], test: list[Clip], model_per: str, unit: str = "id") -> list[Group]:
    """Groups in sorted order, without the per-ID models nothing would score (:func:`skipped_ids`); a test ID
    with no training clips is an error naming it."""
    if model_per == "id-vs-others":
        groups = _id_vs_others(train, test, unit)
    else:
        groups = []
        for name in sorted({_key(c, model_per, unit) for c in train}):
            g_train = tuple(c for c in train if _key(c, model_per, unit) == name)
            g_test = tuple(c for c in test if _key(c, model_per, unit) == name)
            classes = tuple(sorted({(c.machine_type, c.machine_id) for c in g_train}))
            groups.append(Group(name, g_train, g_test, classes))
    trained = {(c.machine_type, c.machine_id) for c in train}
    for clip in test:
        if (clip.machine_type, clip.machine_id) not in trained:
            raise AsdbenchError(
                f"test clip {clip.path} is of {id_name(clip.machine_type, clip.machine_id, unit)}, which has no training "
                "clips"
            )
    if model_per in PER_ID:
        groups = [g for g in groups if g.test]
        if not groups:
            raise AsdbenchError(f"model_per={model_per} trains a model per machine ID with test clips, and no ID has "
                                "any in this protocol: nothing would be scored")
    return groups
