"""Controller bindings as data: CardioPlan's actions and the inputs each controller offers.

The runtime picks the profile of the controllers the user holds and maps its inputs to our
actions, so one table per interaction profile is all that is needed; a new controller is a new
entry here, never new code.  Paths use ``{hand}`` for ``left`` / ``right``; a binding listed for
one hand only (``left:`` / ``right:`` prefix) applies to that hand.

Actions (all with the two hands as sub-action paths)
----------------------------------------------------
========== ========= ================================================================
action     type      what it does (see :mod:`vr.interaction`)
========== ========= ================================================================
grip_pose  pose      where the hand holds the controller: grabbing moves the heart
aim_pose   pose      the pointing ray: select, menu, tool tip
grip       float     squeeze: grab (both hands: scale and rotate)
trigger    float     use the current tool (select/hide, cut, measure, landmark)
thumbstick vector2f  left/right: previous/next rehearsal step
primary    boolean   open/close the menu panel (A/X, or the menu button)
secondary  boolean   next tool (B/Y, or a trackpad click)
haptic     vibration haptic pulses on actions
========== ========= ================================================================

Examples
--------
>>> sorted(PROFILES)[0]
'/interaction_profiles/htc/vive_controller'
>>> ("primary", "/user/hand/right/input/a/click") in expand_bindings(
...     "/interaction_profiles/oculus/touch_controller")
True
"""

from __future__ import annotations

__all__ = ["ACTIONS", "PROFILES", "expand_bindings", "profile_name"]

ACTIONS: dict[str, tuple[str, str]] = {
    "grip_pose": ("pose", "Hand grip pose"),
    "aim_pose": ("pose", "Pointer pose"),
    "grip": ("float", "Grab the heart"),
    "trigger": ("float", "Use tool"),
    "thumbstick": ("vector2f", "Rehearsal steps"),
    "primary": ("boolean", "Menu"),
    "secondary": ("boolean", "Next tool"),
    "haptic": ("vibration", "Haptic pulse"),
}
"""action name -> (OpenXR action type, localized name)."""

_POSES_AND_HAPTICS = {
    "grip_pose": ["{hand}/input/grip/pose"],
    "aim_pose": ["{hand}/input/aim/pose"],
    "haptic": ["{hand}/output/haptic"],
}

PROFILES: dict[str, dict[str, list[str]]] = {
    "/interaction_profiles/khr/simple_controller": {
        **_POSES_AND_HAPTICS,
        "trigger": ["{hand}/input/select/click"],
        "primary": ["{hand}/input/menu/click"],
    },
    "/interaction_profiles/oculus/touch_controller": {
        **_POSES_AND_HAPTICS,
        "grip": ["{hand}/input/squeeze/value"],
        "trigger": ["{hand}/input/trigger/value"],
        "thumbstick": ["{hand}/input/thumbstick"],
        "primary": ["left:{hand}/input/x/click", "right:{hand}/input/a/click",
                    "left:{hand}/input/menu/click"],
        "secondary": ["left:{hand}/input/y/click", "right:{hand}/input/b/click"],
    },
    "/interaction_profiles/valve/index_controller": {
        **_POSES_AND_HAPTICS,
        "grip": ["{hand}/input/squeeze/value"],
        "trigger": ["{hand}/input/trigger/value"],
        "thumbstick": ["{hand}/input/thumbstick"],
        "primary": ["{hand}/input/a/click"],
        "secondary": ["{hand}/input/b/click"],
    },
    "/interaction_profiles/htc/vive_controller": {
        **_POSES_AND_HAPTICS,
        "grip": ["{hand}/input/squeeze/click"],
        "trigger": ["{hand}/input/trigger/value"],
        "thumbstick": ["{hand}/input/trackpad"],
        "primary": ["{hand}/input/menu/click"],
        "secondary": ["{hand}/input/trackpad/click"],
    },
    "/interaction_profiles/microsoft/motion_controller": {
        **_POSES_AND_HAPTICS,
        "grip": ["{hand}/input/squeeze/click"],
        "trigger": ["{hand}/input/trigger/value"],
        "thumbstick": ["{hand}/input/thumbstick"],
        "primary": ["{hand}/input/menu/click"],
        "secondary": ["{hand}/input/trackpad/click"],
    },
}
"""interaction profile -> action -> input paths (suggested bindings)."""


def expand_bindings(profile: str) -> list[tuple[str, str]]:
    """The ``(action, full input path)`` pairs to suggest for ``profile``.

    Raises
    ------
    KeyError
        ``profile`` is not in :data:`PROFILES`.
    """
    out = []
    for action, paths in PROFILES[profile].items():
        if action not in ACTIONS:
            raise ValueError(f"{profile} binds unknown action {action!r}")
        for p in paths:
            only, _, template = p.rpartition(":")
            for hand in ("left", "right"):
                if only and only != hand:
                    continue
                out.append((action, template.format(hand=f"/user/hand/{hand}")))
    return out


def profile_name(profile: str) -> str:
    """Short name of a profile path (``oculus/touch_controller``)."""
    return profile.removeprefix("/interaction_profiles/")
