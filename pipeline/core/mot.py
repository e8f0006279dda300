"""Multi-object tracking in the image (pure, vectorised).

A SORT-style tracker: each track is a constant-velocity Kalman filter on the box
centre and size ``[cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels, pixels/s); detections
are assigned to predicted tracks with :func:`scipy.optimize.linear_sum_assignment`
on a cost mixing IoU and normalised centre distance, behind a gate. A track is
born tentative, confirmed after ``n_init`` hits and dropped after ``max_misses``
consecutive misses (a tentative track at its first miss). Time is passed in.

>>> trk = MultiObjectTracker(n_init=2)
>>> trk.update(np.array([[10.0, 10.0, 20.0, 10.0]]), np.array([0.9]), 0.0).tolist()
[-1]
>>> trk.update(np.array([[12.0, 10.0, 20.0, 10.0]]), np.array([0.9]), 1.0).tolist()
[1]
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["MultiObjectTracker", "iou_xywh"]

_INFEASIBLE = 1e6
_H = np.hstack([np.eye(4), np.zeros((4, 4))])


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of ``[x, y, w, h]`` boxes, shape ``(len(a), len(b))``.

    >>> iou_xywh(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 2, 2], [5, 5, 1, 1]])).round(3).tolist()
    [[0.333, 0.0]]
    """
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[:, None, 2] * a[:, None, 3]) + (b[None, :, 2] * b[None, :, 3]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _to_state(boxes_xywh: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xywh, dtype=float).reshape(-1, 4)
    return np.column_stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, b[:, 2], b[:, 3]])


def _to_xywh(z: np.ndarray) -> np.ndarray:
    return np.column_stack([z[:, 0] - z[:, 2] / 2, z[:, 1] - z[:, 3] / 2, z[:, 2], z[:, 3]])


class MultiObjectTracker:
    """Stable camera track ids for boxes across frames of one camera.

    :param n_init: hits needed before a track is confirmed and gets an id out
    :param max_misses: consecutive frames without a detection before a confirmed track dies
    :param iou_gate: an assignment needs at least this IoU ...
    :param distance_gate: ... or a centre distance of at most this many predicted box diagonals
    :param pos_sigma: process noise of position and size, as a fraction of box size per sqrt(s)
    :param vel_sigma: process noise of velocity, fraction of box size per s per sqrt(s)
    :param meas_sigma: measurement noise, fraction of box size
    """

    def __init__(
        self,
        *,
        n_init: int = 3,
        max_misses: int = 5,
        iou_gate: float = 0.1,
        distance_gate: float = 1.0,
        pos_sigma: float = 0.05,
        vel_sigma: float = 0.05,
        meas_sigma: float = 0.05,
    ) -> None:
        self.n_init = int(n_init)
        self.max_misses = int(max_misses)
        self.iou_gate = float(iou_gate)
        self.distance_gate = float(distance_gate)
        self.pos_sigma = float(pos_sigma)
        self.vel_sigma = float(vel_sigma)
        self.meas_sigma = float(meas_sigma)
        self.x = np.zeros((0, 8))
        self.P = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, dtype=np.int64)
        self.hits = np.zeros(0, dtype=np.int64)
        self.misses = np.zeros(0, dtype=np.int64)
        self.confirmed = np.zeros(0, dtype=bool)
        self.t_s: float | None = None
        self._next_id = 1

    # -------------------------------------------------------------- filter pieces
    def _scale(self, x: np.ndarray) -> np.ndarray:
        """Per-component size scale ``[w, h, w, h]`` of each state, pixels (at least 1)."""
        w = np.maximum(x[:, 2], 1.0)
        h = np.maximum(x[:, 3], 1.0)
        return np.column_stack([w, h, w, h])

    def _predict(self, dt_s: float) -> None:
        if len(self.x) == 0 or dt_s <= 0.0:
            return
        F = np.eye(8)
        F[:4, 4:] = dt_s * np.eye(4)
        s = self._scale(self.x)
        q = np.concatenate(
            [(self.pos_sigma * s) ** 2 * dt_s, (self.vel_sigma * s) ** 2 * dt_s], axis=1
        )
        self.x = self.x @ F.T
        self.P = F @ self.P @ F.T + q[:, :, None] * np.eye(8)
        self.x[:, 2:4] = np.maximum(self.x[:, 2:4], 1.0)

    def _correct(self, rows: np.ndarray, z: np.ndarray) -> None:
        if len(rows) == 0:
            return
        x = self.x[rows]
        P = self.P[rows]
        r = (self.meas_sigma * self._scale(x)) ** 2
        S = _H @ P @ _H.T + r[:, :, None] * np.eye(4)
        PHt = P @ _H.T
        K = np.linalg.solve(S, PHt.transpose(0, 2, 1)).transpose(0, 2, 1)
        innov = z - x[:, :4]
        self.x[rows] = x + np.einsum("nij,nj->ni", K, innov)
        self.P[rows] = (np.eye(8) - K @ _H) @ P

    def _new_tracks(self, z: np.ndarray) -> None:
        n = len(z)
        if n == 0:
            return
        x = np.hstack([z, np.zeros((n, 4))])
        s = self._scale(x)
        var = np.concatenate([(self.meas_sigma * s) ** 2, (0.5 * s) ** 2], axis=1)
        self.x = np.vstack([self.x, x])
        self.P = np.concatenate([self.P, var[:, :, None] * np.eye(8)])
        self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(n, dtype=np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, self.n_init <= 1)])

    # -------------------------------------------------------------- public
    def predicted_boxes(self) -> np.ndarray:
        """Current track boxes ``[x, y, w, h]``, pixels, one row per live track."""
        return _to_xywh(self.x[:, :4])

    def update(self, boxes_xywh: np.ndarray, scores: np.ndarray, t_s: float) -> np.ndarray:
        """Advance to ``t_s`` and assign this frame's detections to tracks.

        :param boxes_xywh: detections ``(N, 4)``, ``[x, y, w, h]`` in pixels
        :param scores: detection confidences ``(N,)`` (ties are broken in their favour)
        :param t_s: frame time, seconds (any epoch, non-decreasing)
        :return: track id per detection ``(N,)``; ``-1`` while its track is still tentative
        """
        boxes = np.asarray(boxes_xywh, dtype=float).reshape(-1, 4)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        dt = 0.0 if self.t_s is None else max(0.0, float(t_s) - self.t_s)
        self.t_s = float(t_s) if self.t_s is None else max(self.t_s, float(t_s))
        self._predict(dt)

        z = _to_state(boxes)
        n_trk, n_det = len(self.x), len(z)
        det_track = np.full(n_det, -1, dtype=np.int64)  # row of the track each detection feeds
        if n_trk and n_det:
            pred = self.predicted_boxes()
            iou = iou_xywh(pred, boxes)
            diag_t = np.hypot(self.x[:, 2], self.x[:, 3])
            diag_d = np.hypot(z[:, 2], z[:, 3])
            dist = np.hypot(self.x[:, None, 0] - z[None, :, 0], self.x[:, None, 1] - z[None, :, 1])
            norm = dist / (diag_t[:, None] + diag_d[None, :])
            cost = 1.0 - iou + norm - 1e-3 * scores[None, :]
            ok = (iou >= self.iou_gate) | (dist <= self.distance_gate * diag_t[:, None])
            cost = np.where(ok, cost, _INFEASIBLE)
            rows, cols = linear_sum_assignment(cost)
            keep = cost[rows, cols] < _INFEASIBLE
            rows, cols = rows[keep], cols[keep]
            self._correct(rows, z[cols])
            det_track[cols] = rows
            matched = np.zeros(n_trk, dtype=bool)
            matched[rows] = True
        else:
            matched = np.zeros(n_trk, dtype=bool)

        self.hits[matched] += 1
        self.misses[matched] = 0
        self.misses[~matched] += 1
        self.confirmed |= self.hits >= self.n_init

        ids_out = np.full(n_det, -1, dtype=np.int64)
        has = det_track >= 0
        conf_rows = det_track[has]
        ids_out[has] = np.where(self.confirmed[conf_rows], self.ids[conf_rows], -1)

        # death: tentative tracks at their first miss, confirmed ones after max_misses
        dead = (~matched) & ((~self.confirmed) | (self.misses >= self.max_misses))
        if dead.any():
            alive = ~dead
            self.x, self.P = self.x[alive], self.P[alive]
            self.ids, self.hits = self.ids[alive], self.hits[alive]
            self.misses, self.confirmed = self.misses[alive], self.confirmed[alive]

        new = np.flatnonzero(~has)
        first = len(self.x)
        self._new_tracks(z[new])
        if self.n_init <= 1:
            ids_out[new] = self.ids[first:]
        return ids_out
