"""Slew-to-cue: PTZ cameras turned towards what alerts point at (see ``docs/radar.md``).

:mod:`pipeline.cue.arbiter` decides which camera takes which cue (pure, no I/O);
:mod:`pipeline.cue.service` runs it against the alert topic and the cameras;
:mod:`pipeline.cue.locks` holds the operators' camera locks.
"""
