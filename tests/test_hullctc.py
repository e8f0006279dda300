"""Hull numbers decoded from a recogniser's per-frame probabilities, held to the grammar."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.hullctc import HullGrammar, decode_hull_number

pytestmark = pytest.mark.unit

#: a small alphabet in the recogniser's layout: blank first
ALPHABET = ["blank", *"0123456789", *"琼京粤儋修海口汕渔运", " "]


def _frames(spec: list[dict[str, float]]) -> np.ndarray:
    """One frame per dict of character -> probability; the rest of the mass on blank."""
    out = np.full((len(spec), len(ALPHABET)), 1e-6)
    for t, probs in enumerate(spec):
        for c, p in probs.items():
            out[t, ALPHABET.index(c)] = p
        out[t, 0] = max(1e-6, 1.0 - sum(probs.values()))
    return out / out.sum(axis=1, keepdims=True)


def _text(*chars: str | dict[str, float]) -> np.ndarray:
    """Each character on two frames with a blank after it (a dict: a mixed frame pair)."""
    spec: list[dict[str, float]] = []
    for c in chars:
        probs = c if isinstance(c, dict) else {c: 0.97}
        spec += [probs, probs, {}]
    return _frames(spec)


GRAMMAR = HullGrammar(ALPHABET, ["海口", "儋"])


def test_a_clear_number_decodes_as_the_greedy_reading_with_no_deficit() -> None:
    r = decode_hull_number(_text(*"琼海口渔12345"), GRAMMAR)
    assert r is not None and r.text == "琼海口渔12345"
    assert r.deficit == pytest.approx(0.0, abs=1e-6) and r.confidence > 0.95


def test_a_look_alike_outside_the_lexicon_gives_way_to_the_port_the_image_also_allows() -> None:
    # the recogniser prefers 修 but gives 儋 a fair share: the grammar takes 儋, at a small cost
    probs = _text("琼", {"修": 0.6, "儋": 0.3}, "渔", *"0373")
    r = decode_hull_number(probs, GRAMMAR)
    assert r is not None and r.text == "琼儋渔0373"
    assert 0.5 < r.deficit < 3.0


def test_a_plain_character_outside_the_grammar_costs_a_large_deficit() -> None:
    # 京 painted plainly: the grammar can only say 琼, far less probable than what is seen
    r = decode_hull_number(_text("京", *"海口渔12345"), GRAMMAR)
    assert r is not None and r.text.startswith("琼") and r.deficit > 10.0
    # a port outside the lexicon likewise
    r = decode_hull_number(_text("琼", "汕", *"渔12345"), GRAMMAR)
    assert r is not None and r.deficit > 10.0


def test_repeated_digits_need_a_blank_between_them() -> None:
    spec = [{c: 0.97} for c in "琼"] + [{}] + [{"儋": 0.97}, {}, {"渔": 0.97}, {}]
    spec += [{"1": 0.97}, {"1": 0.97}, {}, {"1": 0.97}, {"2": 0.97}, {"2": 0.97}]
    r = decode_hull_number(_frames(spec), GRAMMAR)
    assert r is not None and r.text == "琼儋渔112"


def test_no_string_of_the_grammar_fits_in_too_few_frames() -> None:
    assert decode_hull_number(_frames([{"琼": 0.9}, {"儋": 0.9}, {"渔": 0.9}]), GRAMMAR) is None
    assert decode_hull_number(np.zeros((0, len(ALPHABET))), GRAMMAR) is None


def test_ports_the_recogniser_cannot_write_are_left_out_of_the_lexicon() -> None:
    g = HullGrammar(ALPHABET, ["海口", "洋浦"])  # 洋浦 is not in this alphabet
    r = decode_hull_number(_text("琼", {"修": 0.6, "儋": 0.3}, "渔", *"0373"), g)
    assert r is not None and r.text.startswith("琼海口渔")  # the only port it can write
    assert r.deficit > 10.0
