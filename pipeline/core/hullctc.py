"""Hull numbers decoded from a text recogniser's per-frame character probabilities, held to
the hull-number grammar.

A CTC text recogniser (PP-OCR's) gives, for each column frame of a text line, a probability
for every character of its alphabet and for *blank*. Reading the most probable character of
each frame (greedy decoding) is free to return any string, and a hull number painted with a
rare character comes out as a common look-alike: 儋 (Danzhou) is read as 修 or 信, 琼 as 京.
:func:`decode_hull_number` instead finds the most probable frame alignment of a string the
grammar allows, a province character (:data:`~pipeline.core.hullnumbers.PROVINCES`), a port
from a lexicon (the coast's ports and the registry's), a use character, then 2 to 6 digits,
by Viterbi over a graph of those characters, and says how much less probable that alignment
is than the greedy one (``deficit``, natural log units): near zero when the grammar only
settles what the image leaves open, large when the image plainly shows something else (京
painted, not 琼), when the caller must keep the greedy reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.hullnumbers import PROVINCES, USES

__all__ = ["ConstrainedReading", "HullGrammar", "decode_hull_number"]

_NEG = -1e30
#: fewest and most digits of a serial (as :func:`pipeline.core.hullnumbers.parse` allows)
_SERIAL_MIN, _SERIAL_MAX = 2, 6


@dataclass(frozen=True, slots=True)
class ConstrainedReading:
    """The grammar's best string for one crop.

    :param text: the hull number (it always follows the pattern)
    :param log_prob: log probability of its best alignment, natural log
    :param deficit: greedy alignment's log probability minus ``log_prob`` (≥ 0)
    :param confidence: mean over its characters of each one's highest frame probability
    """

    text: str
    log_prob: float
    deficit: float
    confidence: float


class HullGrammar:
    """The hull-number grammar as a graph of the recogniser's character indices.

    :param alphabet: the recogniser's labels, index 0 being blank
    :param ports: the port abbreviations allowed (characters the recogniser cannot emit drop
        the port)
    """

    def __init__(self, alphabet: Sequence[str], ports: Iterable[str]) -> None:
        index = {c: i for i, c in enumerate(alphabet) if i > 0}
        labels: list[int] = []
        preds: list[list[int]] = []
        starts: list[int] = []

        def node(label: int, pred: list[int]) -> int:
            labels.append(label)
            preds.append(pred)
            return len(labels) - 1

        province = [node(index[c], []) for c in PROVINCES if c in index]
        starts.extend(province)
        port_ends = []
        for port in sorted(set(ports)):
            if not port or any(c not in index for c in port):
                continue
            prev = province
            for c in port:
                prev = [node(index[c], prev)]
            port_ends.extend(prev)
        layer = [node(index[c], port_ends) for c in USES if c in index]
        accept: list[int] = []
        digits = [index[str(d)] for d in range(10)]
        for k in range(1, _SERIAL_MAX + 1):
            layer = [node(d, layer) for d in digits]
            if k >= _SERIAL_MIN:
                accept.extend(layer)
        n = len(labels)
        self.alphabet = list(alphabet)
        self.labels = np.array(labels, dtype=np.int64)
        self.pred = np.zeros((n, n), dtype=bool)
        for i, p in enumerate(preds):
            self.pred[i, p] = True
        #: a predecessor emitting the same character must be left through a blank
        self.pred_direct = self.pred & (self.labels[:, None] != self.labels[None, :])
        self.start = np.zeros(n, dtype=bool)
        self.start[starts] = True
        self.accept = np.zeros(n, dtype=bool)
        self.accept[accept] = True


def decode_hull_number(probs: np.ndarray, grammar: HullGrammar) -> ConstrainedReading | None:
    """The most probable hull number the grammar allows in a recogniser's output.

    :param probs: ``(T, C)`` per-frame probabilities over the recogniser's alphabet (blank at
        index 0); several text lines are joined with a blank frame between them
    :returns: ``None`` when no string of the grammar fits in ``T`` frames
    """
    lp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-30, 1.0))
    t_n = lp.shape[0]
    n = len(grammar.labels)
    if t_n == 0 or n == 0:
        return None
    emit = lp[:, grammar.labels]  # (T, N)
    blank = lp[:, 0]
    e = np.full(n, _NEG)  # in node n, on a frame of its character
    b = np.full(n, _NEG)  # in node n, on a blank after its character
    s = 0.0  # before the first character, on blanks
    # back pointers: E from (0 stay, 1 B of pred, 2 E of pred, 3 start) and which pred
    e_kind = np.zeros((t_n, n), dtype=np.int8)
    e_from = np.zeros((t_n, n), dtype=np.int64)
    b_kind = np.zeros((t_n, n), dtype=np.int8)  # 0 stay on blank, 1 from E
    for t in range(t_n):
        via_b = np.where(grammar.pred, b[None, :], _NEG)
        via_e = np.where(grammar.pred_direct, e[None, :], _NEG)
        arg_b, arg_e = via_b.argmax(axis=1), via_e.argmax(axis=1)
        cand = np.stack(
            [
                e,
                via_b[np.arange(n), arg_b],
                via_e[np.arange(n), arg_e],
                np.where(grammar.start, s, _NEG),
            ]
        )
        kind = cand.argmax(axis=0)
        best = cand[kind, np.arange(n)]
        e_kind[t], e_from[t] = kind, np.where(kind == 1, arg_b, arg_e)
        b_kind[t] = e > b
        b = np.maximum(b, e) + blank[t]
        e = np.where(best > _NEG / 2, best + emit[t], _NEG)
        s += blank[t]
    final = np.where(grammar.accept, np.maximum(e, b), _NEG)
    end = int(final.argmax())
    if final[end] <= _NEG / 2:
        return None
    # walk back: the nodes entered, and each one's frames
    path: list[int] = []
    peak: list[float] = []
    node, in_e, new_entry = end, bool(e[end] >= b[end]), True
    for t in range(t_n - 1, -1, -1):
        if not in_e:
            in_e = bool(b_kind[t, node])
            continue
        if new_entry:
            path.append(node)
            peak.append(_NEG)
            new_entry = False
        peak[-1] = max(peak[-1], float(emit[t, node]))
        k = int(e_kind[t, node])
        if k == 0:
            continue
        new_entry = True
        if k == 3:
            break
        node, in_e = int(e_from[t, node]), k == 2
    path.reverse()
    peak.reverse()
    text = "".join(grammar.alphabet[int(grammar.labels[i])] for i in path)
    greedy = float(lp.max(axis=1).sum())
    return ConstrainedReading(
        text=text,
        log_prob=float(final[end]),
        deficit=max(0.0, greedy - float(final[end])),
        confidence=float(np.mean(np.exp(peak))) if peak else 0.0,
    )
