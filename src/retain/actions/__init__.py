"""From predictions to what marketing does about them."""

from retain.actions.recommend import ACTIONS, recommend_actions

__all__ = ["ACTIONS", "recommend_actions"]
