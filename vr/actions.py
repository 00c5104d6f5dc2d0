"""OpenXR actions for the two controllers, built from :mod:`vr.bindings`; read as a FrameInput.

:class:`Controls` creates the action set and actions, suggests the bindings of every profile in
:data:`vr.bindings.PROFILES`, attaches them to the session and creates the pose spaces.  Each
frame :meth:`Controls.read` syncs the actions and returns a :class:`vr.interaction.FrameInput`;
:meth:`Controls.pulse` plays :class:`vr.interaction.Haptic` requests.
"""

from __future__ import annotations

import logging
from typing import Any

from cardioplan.errors import RuntimeMissingError
from vr.bindings import ACTIONS, PROFILES, expand_bindings, profile_name
from vr.interaction import HANDS, FrameInput, HandInput, Haptic
from vr.xrmath import Pose

__all__ = ["Controls"]

log = logging.getLogger(__name__)


class Controls:
    """The action set of a session (create before the session begins).

    Parameters
    ----------
    instance, session
        pyopenxr handles.
    profiles : iterable of str, optional
        Interaction profiles to suggest (default: all of :data:`vr.bindings.PROFILES`).

    Raises
    ------
    RuntimeMissingError
        The runtime accepted none of the controller profiles.
    """

    def __init__(self, instance: Any, session: Any, *, profiles: Any = None) -> None:
        import xr

        self._xr = xr
        self.instance, self.session = instance, session
        self.hand_paths = {h: xr.string_to_path(instance, f"/user/hand/{h}") for h in HANDS}
        self.action_set = xr.create_action_set(instance, xr.ActionSetCreateInfo(
            action_set_name="cardioplan", localized_action_set_name="CardioPlan", priority=0))
        types = {"pose": xr.ActionType.POSE_INPUT, "float": xr.ActionType.FLOAT_INPUT,
                 "vector2f": xr.ActionType.VECTOR2F_INPUT,
                 "boolean": xr.ActionType.BOOLEAN_INPUT,
                 "vibration": xr.ActionType.VIBRATION_OUTPUT}
        subpaths = list(self.hand_paths.values())
        self.actions = {
            name: xr.create_action(self.action_set, xr.ActionCreateInfo(
                action_type=types[kind], action_name=name, localized_action_name=label,
                subaction_paths=subpaths))
            for name, (kind, label) in ACTIONS.items()}
        accepted = []
        for profile in (profiles or PROFILES):
            binds = [xr.ActionSuggestedBinding(self.actions[a], xr.string_to_path(instance, p))
                     for a, p in expand_bindings(profile)]
            try:
                xr.suggest_interaction_profile_bindings(
                    instance, xr.InteractionProfileSuggestedBinding(
                        interaction_profile=xr.string_to_path(instance, profile),
                        suggested_bindings=binds))
                accepted.append(profile)
            except xr.XrException as exc:
                log.warning("the runtime rejected the %s bindings: %s", profile_name(profile), exc)
        if not accepted:
            raise RuntimeMissingError("the OpenXR runtime accepted none of the controller "
                                      f"bindings ({', '.join(map(profile_name, PROFILES))})")
        self.accepted_profiles = accepted
        xr.attach_session_action_sets(session, xr.SessionActionSetsAttachInfo(
            action_sets=[self.action_set]))
        self.spaces = {}
        for kind in ("grip_pose", "aim_pose"):
            for h, path in self.hand_paths.items():
                self.spaces[(kind, h)] = xr.create_action_space(session, xr.ActionSpaceCreateInfo(
                    action=self.actions[kind], subaction_path=path,
                    pose_in_action_space=xr.Posef()))
        self.current_profiles: dict[str, str] = {}
        self._info = {(n, h): xr.ActionStateGetInfo(action=a, subaction_path=path)
                      for n, a in self.actions.items() for h, path in self.hand_paths.items()}
        self._sync = xr.ActionsSyncInfo(
            active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)])
        self._valid = int(xr.SpaceLocationFlags.POSITION_VALID_BIT
                          | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT)

    def profile_changed(self) -> None:
        """Record which profile the runtime now uses for each hand (for the log and --json)."""
        xr = self._xr
        for h, path in self.hand_paths.items():
            try:
                st = xr.get_current_interaction_profile(self.session, path)
                p = st.interaction_profile
                self.current_profiles[h] = xr.path_to_string(self.instance, p) if p else ""
            except xr.XrException:
                self.current_profiles[h] = ""
        log.info("controllers: %s", self.current_profiles)

    def read(self, space: Any, display_time: int, head: Pose | None = None) -> FrameInput:
        """Sync the actions and return this frame's input (poses in ``space``)."""
        xr = self._xr
        session = self.session
        xr.sync_actions(session, self._sync)
        hands = {}
        for h in self.hand_paths:
            info = self._info
            poses = {}
            for kind in ("grip_pose", "aim_pose"):
                loc = xr.locate_space(self.spaces[(kind, h)], space, display_time)
                ok = (int(loc.location_flags) & self._valid) == self._valid
                poses[kind] = Pose.from_xr(loc.pose) if ok else None
            stick = xr.get_action_state_vector2f(session, info[("thumbstick", h)]).current_state
            hands[h] = HandInput(
                grip_pose=poses["grip_pose"], aim_pose=poses["aim_pose"],
                grip=float(xr.get_action_state_float(session, info[("grip", h)]).current_state),
                trigger=float(xr.get_action_state_float(session,
                                                        info[("trigger", h)]).current_state),
                thumbstick=(float(stick.x), float(stick.y)),
                primary=bool(xr.get_action_state_boolean(session,
                                                         info[("primary", h)]).current_state),
                secondary=bool(xr.get_action_state_boolean(
                    session, info[("secondary", h)]).current_state))
        return FrameInput(hands=hands, head=head)

    def pulse(self, haptic: Haptic) -> None:
        """Play one haptic pulse on a hand."""
        xr = self._xr
        vib = xr.HapticVibration(duration=int(haptic.duration_s * 1e9),
                                 frequency=haptic.frequency_hz or xr.FREQUENCY_UNSPECIFIED,
                                 amplitude=haptic.amplitude)
        xr.apply_haptic_feedback(self.session, xr.HapticActionInfo(
            action=self.actions["haptic"], subaction_path=self.hand_paths[haptic.hand]), vib)

    def destroy(self) -> None:
        """Destroy the pose spaces and the action set (before the session)."""
        xr = self._xr
        for s in self.spaces.values():
            xr.destroy_space(s)
        self.spaces = {}
        xr.destroy_action_set(self.action_set)
