"""The study's zoo: base networks trained by the project itself, each with weights and a card.

``medtask zoo list | train NAME | verify | shrink NAME`` (see :mod:`medtask.cli`). A chapter starts from an
entry with :func:`load`, which checks the weights' sha256 against the card and that the card was
trained from the recipe the code defines now. Each method defines its entries in its own ``zoo``
module (e.g. :mod:`medtask.methods.mvmicnet.zoo`); weights and cards are in the repository's
``zoo/`` folder (``$MEDTASK_ZOO`` for another). The zoo itself knows no method.
"""

from medtask.zoo.registry import Entry, entries, get, register
from medtask.zoo.store import ZooError, read_card, zoo_dir
from medtask.zoo.trainer import load, load_into, plateau, runs_dir, shrink, train, verify

__all__ = ["Entry", "ZooError", "entries", "get", "load", "load_into", "plateau", "read_card", "register", "runs_dir",
           "shrink", "train", "verify", "zoo_dir"]
