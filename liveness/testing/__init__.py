"""The synthetic avatar (a talking head animated from one photo) for tests, the built-in demo
and as an attack sample: not part of the analysis, which never imports it."""

from liveness.testing.avatar import Avatar, astronaut_photo, photo_landmarks
from liveness.testing.clips import make_demo_clip, write_clip
from liveness.testing.hand import HandSprite, paint_face_over_hand
from liveness.testing.script import ACTIONS, Action, AvatarScript, AvatarState

__all__ = ["ACTIONS", "Action", "Avatar", "AvatarScript", "AvatarState", "HandSprite", "astronaut_photo",
           "make_demo_clip", "paint_face_over_hand", "photo_landmarks", "write_clip"]
