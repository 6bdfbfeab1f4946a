"""How training data is split into models: one for all machines, one per type, or one per ID."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asdbench.api import Clip
from asdbench.errors import AsdbenchError

RULES = ("dcase2020", "dcase2021", "dcase2022")  # the evaluation rules (asdbench.evaluation.metrics)
UNITS = {"dcase2020": "id", "dcase2021": "section", "dcase2022": "section"}  # what a rule's machine_id names
CLASS_MODES = ("unit", "attribute")
NO_ATTRIBUTES = ("", "noAttribute")


def class_of(clip: Clip, classes: str = "unit") -> tuple[str, ...]:
    """The class a training clip teaches a classifier: its machine ID / section, or with ``classes="attribute"`` the
    section and attribute string together (what the DCASE 2022+ top systems train on; a clip whose attributes are
    concealed, ``noAttribute``, keeps its section alone)."""
    if classes == "attribute" and clip.attributes not in NO_ATTRIBUTES:
        return clip.machine_type, clip.machine_id, clip.attributes
    return clip.machine_type, clip.machine_id


@dataclass(frozen=True)
class Group:
    """The clips one model trains and scores on, and its class list (label order): machine IDs (sections), or
    sections with an attribute string (``(type, section, attributes)``)."""

    name: str
    train: tuple[Clip, ...]
    test: tuple[Clip, ...]
    classes: tuple[tuple[str, ...], ...]
    owns: tuple[tuple[str, str], ...] = ()  # the IDs this model decides for (its own, not its outliers); all if empty
    mode: str = "unit"  # how a clip's class is read: class_of(clip, mode)

    @property
    def decides(self) -> tuple[tuple[str, str], ...]:
        return self.owns or tuple(dict.fromkeys(c[:2] for c in self.classes))

    def target(self, clip: Clip) -> int:
        """The class a training clip teaches."""
        return self.classes.index(class_of(clip, self.mode))

    def alternatives(self, clip: Clip) -> list[int]:
        return alternatives(self.classes, (clip.machine_type, clip.machine_id))

    @property
    def slug(self) -> str:
        return slug(self.name)


def alternatives(classes: tuple[tuple[str, ...], ...], machine: tuple[str, str]) -> list[int]:
    """The classes a clip of ``machine`` to score may be of: every class of its machine ID (the attribute of a test
    clip is not known), scored against each, the most normal kept (:func:`asdbench.training.loop.score`)."""
    return [k for k, c in enumerate(classes) if c[:2] == machine]


def id_name(machine_type: str, machine_id: str, unit: str = "id") -> str:
    """How a machine ID (``unit="section"``: a section) is named in logs, label maps, manifests and metric keys:
    ``fan/id_00``, ``fan/section_00``."""
    return f"{machine_type}/{unit}_{machine_id}"


def class_name(cls: tuple[str, ...], unit: str = "id") -> str:
    """A class as label maps and manifests name it: ``fan/section_00``, ``fan/section_00/spd_A``."""
    return "/".join([id_name(cls[0], cls[1], unit), *cls[2:]])


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


def make_groups(train: list[Clip], test: list[Clip], model_per: str, unit: str = "id", classes: str = "unit",
                ) -> list[Group]:
    """Groups in sorted order, without the per-ID models nothing would score (:func:`skipped_ids`); a test ID
    with no training clips is an error naming it. ``classes``: how a clip's class is read (:func:`class_of`)."""
    if classes not in CLASS_MODES:
        raise AsdbenchError(f"classes={classes!r} is not one of: section (unit), attribute")
    if model_per == "id-vs-others":
        if classes != "unit":
            raise AsdbenchError("model_per=id-vs-others trains each ID against the others as outliers; it takes "
                                "classes=section only")
        groups = _id_vs_others(train, test, unit)
    else:
        groups = []
        for name in sorted({_key(c, model_per, unit) for c in train}):
            g_train = tuple(c for c in train if _key(c, model_per, unit) == name)
            g_test = tuple(c for c in test if _key(c, model_per, unit) == name)
            labels = tuple(sorted({class_of(c, classes) for c in g_train}))
            groups.append(Group(name, g_train, g_test, labels, mode=classes))
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


def rule_of(dataset: Any) -> str:
    """The evaluation rule a data set declares (its optional ``evaluation`` attribute; ``dcase2020`` without one)."""
    rule = getattr(dataset, "evaluation", "dcase2020")
    if rule not in RULES:
        raise ValueError(f"dataset {getattr(dataset, 'name', '?')} declares evaluation={rule!r}; one of {', '.join(RULES)}")
    return rule
